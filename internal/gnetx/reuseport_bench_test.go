//go:build linux

package gnetx

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSharedVsReuseport compares two one-loop engines (two workers)
// accepting on one shared socket (what the master passes by default)
// with each engine binding its own SO_REUSEPORT socket (--reuseport):
// the accept rate, and how evenly the connections spread (the smaller
// share of the two engines, 0.5 is even). Interleaved rounds, rotating
// order, same run.
//
//	go test -run '^$' -bench SharedVsReuseport -benchtime 30x ./internal/gnetx
func BenchmarkSharedVsReuseport(b *testing.B) {
	const perRound, clients = 2000, 8
	type pair struct {
		name string
		addr string
		hs   [2]*hello
		stop func()
	}
	shared := func() pair {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		rc, _ := ln.(syscall.Conn).SyscallConn()
		p := pair{name: "shared", addr: ln.Addr().String()}
		var es []*Engine
		for i := range p.hs {
			fd := -1
			rc.Control(func(f uintptr) { fd, err = syscall.Dup(int(f)) })
			if err != nil {
				b.Fatal(err)
			}
			p.hs[i] = &hello{}
			e := New(Config{Listeners: []Listener{{FD: fd, Addr: ln.Addr()}}})
			if err := e.Start(p.hs[i]); err != nil {
				b.Fatal(err)
			}
			es = append(es, e)
		}
		ln.Close()
		p.stop = func() {
			for _, e := range es {
				e.Stop()
			}
		}
		return p
	}
	reuse := func() pair {
		rfd, port, err := reservePort()
		if err != nil {
			b.Fatal(err)
		}
		defer syscall.Close(rfd)
		p := pair{name: "reuseport", addr: fmt.Sprintf("127.0.0.1:%d", port)}
		var es []*Engine
		for i := range p.hs {
			p.hs[i] = &hello{}
			e := New(Config{Listeners: []Listener{{FD: -1, Bind: "tcp://" + p.addr}}})
			if err := e.Start(p.hs[i]); err != nil {
				b.Fatal(err)
			}
			es = append(es, e)
		}
		p.stop = func() {
			for _, e := range es {
				e.Stop()
			}
		}
		return p
	}
	ps := []pair{shared(), reuse()}
	defer func() {
		for _, p := range ps {
			p.stop()
		}
	}()
	spent := make([]time.Duration, len(ps))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range ps {
			j := (i + k) % len(ps)
			start := time.Now()
			if err := connect(ps[j].addr, perRound, clients); err != nil {
				b.Fatalf("%s: %v", ps[j].name, err)
			}
			spent[j] += time.Since(start)
		}
	}
	b.StopTimer()
	for j, p := range ps {
		a, c := p.hs[0].opened.Load(), p.hs[1].opened.Load()
		b.ReportMetric(float64(perRound*b.N)/spent[j].Seconds(), p.name+"_conns/s")
		b.ReportMetric(float64(min(a, c))/float64(a+c), p.name+"_minshare")
	}
	b.ReportMetric(spent[0].Seconds()/spent[1].Seconds(), "reuseport/shared_rate")
	b.ReportMetric(0, "ns/op")
}
