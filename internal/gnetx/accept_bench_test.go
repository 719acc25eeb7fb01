package gnetx

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// hello is the server of the accept benchmark: it writes one byte to each
// new connection and counts it; the client reads the byte and resets the
// connection (SO_LINGER 0), so no socket lingers in TIME_WAIT.
type hello struct {
	gnet.BuiltinEventEngine
	opened atomic.Int64
}

func (h *hello) OnOpen(gnet.Conn) ([]byte, gnet.Action) {
	h.opened.Add(1)
	return []byte{'+'}, gnet.None
}

func (h *hello) OnTraffic(c gnet.Conn) gnet.Action {
	_, _ = c.Discard(c.InboundBuffered())
	return gnet.None
}

// acceptVariant is one way for a one-loop gnet engine to get connections.
type acceptVariant struct {
	name string
	addr string
	stop func()
}

// bindVariant: gnet binds its own socket (plain gnet.Run, one loop).
func bindVariant(b *testing.B) acceptVariant {
	rfd, port, err := reservePort()
	if err != nil {
		b.Fatal(err)
	}
	syscall.Close(rfd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	h := &hello{}
	var eng gnet.Engine
	booted := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(&bootHook{hello: h, boot: func(e gnet.Engine) { eng = e; close(booted) }}, "tcp://"+addr,
			gnet.WithMulticore(false), gnet.WithNumEventLoop(1), gnet.WithReusePort(true), gnet.WithLogger(Logger{}))
	}()
	<-booted
	waitDial(b, addr)
	return acceptVariant{name: "gnet-bind", addr: addr, stop: func() { _ = eng.Stop(context.Background()); <-done }}
}

type bootHook struct {
	*hello
	boot func(gnet.Engine)
}

func (h *bootHook) OnBoot(e gnet.Engine) gnet.Action { h.boot(e); return gnet.None }

// adoptVariant: the engine accepts on a socket bound elsewhere (gnetx).
func adoptVariant(b *testing.B) acceptVariant {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rc, _ := ln.(syscall.Conn).SyscallConn()
	fd := -1
	rc.Control(func(f uintptr) { fd, err = syscall.Dup(int(f)) })
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.(*net.TCPListener).SetDeadline(time.Now()) // never accepts here
	e := New(Config{Listeners: []Listener{{FD: fd, Addr: ln.Addr()}}})
	if err := e.Start(&hello{}); err != nil {
		b.Fatal(err)
	}
	// The listener's own descriptor is closed: only the engine holds the
	// socket, as in a worker (the master's copy is outside any poller).
	ln.Close()
	return acceptVariant{name: "gnetx-adopt", addr: addr, stop: func() { _ = e.Stop() }}
}

// registerVariant: Go's net.Listener accepts, Engine.Register enrols.
func registerVariant(b *testing.B) acceptVariant {
	rfd, port, err := reservePort()
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(rfd)
	e := New(Config{Listeners: []Listener{{FD: -1, Bind: fmt.Sprintf("tcp://127.0.0.1:%d", port)}}})
	if err := e.Start(&hello{}); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := e.Gnet().Register(gnet.NewNetConnContext(context.Background(), c)); err != nil {
				c.Close()
			}
		}
	}()
	return acceptVariant{name: "go-accept-register", addr: ln.Addr().String(), stop: func() { ln.Close(); wg.Wait(); _ = e.Stop() }}
}

func waitDial(b *testing.B, addr string) {
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if i > 1000 {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

// connect makes n connections to addr from g goroutines, each read its
// byte and reset.
func connect(addr string, n, g int) error {
	var next atomic.Int64
	errc := make(chan error, g)
	for i := 0; i < g; i++ {
		go func() {
			buf := make([]byte, 1)
			for next.Add(1) <= int64(n) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errc <- err
					return
				}
				if _, err := c.Read(buf); err != nil {
					c.Close()
					errc <- err
					return
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			errc <- nil
		}()
	}
	var first error
	for i := 0; i < g; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// BenchmarkAcceptRate compares the accept rate (connections accepted,
// served one byte and closed, per second) of a one-loop gnet engine that
// binds its own socket, one that adopted a socket bound elsewhere (gnetx,
// what a worker does), and Go's accept loop enrolling each connection
// with Engine.Register. The three run interleaved, in rounds of equal
// work and a rotating order, in the same run; the ratios to gnet-bind
// are reported.
//
//	go test -run '^$' -bench AcceptRate -benchtime 20x ./internal/gnetx
//
// One b.N is a round of 2000 connections per variant.
func BenchmarkAcceptRate(b *testing.B) {
	const perRound, clients = 2000, 8
	vs := []acceptVariant{bindVariant(b), adoptVariant(b), registerVariant(b)}
	defer func() {
		for _, v := range vs {
			v.stop()
		}
	}()
	spent := make([]time.Duration, len(vs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range vs {
			j := (i + k) % len(vs) // rotate the order: no variant always first
			v := vs[j]
			start := time.Now()
			if err := connect(v.addr, perRound, clients); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			spent[j] += time.Since(start)
		}
	}
	b.StopTimer()
	rate := func(j int) float64 { return float64(perRound*b.N) / spent[j].Seconds() }
	for j, v := range vs {
		b.ReportMetric(rate(j), v.name+"_conns/s")
	}
	b.ReportMetric(rate(1)/rate(0), "adopt/bind")
	b.ReportMetric(rate(2)/rate(0), "register/bind")
	b.ReportMetric(0, "ns/op")
}
