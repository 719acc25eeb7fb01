package batchconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
)

// TestBatchConnOrder: what Write queues arrives whole and in order.
func TestBatchConnOrder(t *testing.T) {
	a, b := net.Pipe()
	bc := New(a)
	defer bc.Close()
	var want bytes.Buffer
	for i := 0; i < 2000; i++ {
		want.Write(bytes.Repeat([]byte{byte(i)}, 1+i%300))
	}
	got := make(chan []byte)
	go func() {
		buf := make([]byte, want.Len())
		n, _ := io.ReadFull(b, buf)
		got <- buf[:n]
	}()
	for i, rest := 0, want.Bytes(); len(rest) > 0; i++ {
		p := rest[:1+i%300]
		rest = rest[len(p):]
		if n, err := bc.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if g := <-got; !bytes.Equal(g, want.Bytes()) {
		t.Fatalf("read %d bytes, not the %d written in order", len(g), want.Len())
	}
}

// TestBatchConnError: a write error of the connection is returned by a
// later Write, and writers waiting for room are released.
func TestBatchConnError(t *testing.T) {
	a, b := net.Pipe()
	b.Close() // every write on a fails
	bc := New(a)
	defer bc.Close()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		_, err = bc.Write(make([]byte, 1024))
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write after the connection failed: %v, want io.ErrClosedPipe", err)
	}
}

// TestBatchConnBounded: a peer that reads nothing holds Write at
// MaxBatch queued bytes; Close releases it.
func TestBatchConnBounded(t *testing.T) {
	a, _ := net.Pipe() // nobody reads
	bc := New(a)
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		for err == nil {
			_, err = bc.Write(make([]byte, 4096))
		}
	}()
	// The writer blocks once MaxBatch is queued (plus the batch the
	// flusher holds): wait for it, then close.
	for {
		bc.mu.Lock()
		full := len(bc.pending) >= MaxBatch
		bc.mu.Unlock()
		if full {
			break
		}
		runtime.Gosched()
	}
	bc.mu.Lock()
	if n := len(bc.pending); n > MaxBatch+4096 {
		t.Errorf("%d bytes queued, over the bound %d", n, MaxBatch)
	}
	bc.mu.Unlock()
	bc.Close()
	wg.Wait()
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("the writer held at the bound got %v after Close", err)
	}
	<-bc.done
}
