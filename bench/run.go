package bench

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
)

// Run drives the load profile cfg until Duration (or Requests) is reached
// or ctx is done, and returns what it measured. It returns an error only
// for an invalid Config: failures of the server are counted in
// Result.Errors. Every goroutine Run starts has ended when it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &runner{cfg: cfg, tokens: directTokens(&cfg), plan: newKeyPlan(&cfg)}
	r.tls = clientTLS(&cfg)
	r.dialer.Timeout = cfg.Timeout
	var cancel context.CancelFunc
	r.ctx, cancel = context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	stopParent := context.AfterFunc(ctx, r.finish)
	defer stopParent()

	r.workers = make([]*worker, cfg.Conns)
	for i := range r.workers {
		r.workers[i] = newWorker(r, i)
	}
	r.start = time.Now()
	if cfg.Warmup > 0 {
		t := time.AfterFunc(cfg.Warmup, r.startMeasuring)
		defer t.Stop()
	} else {
		r.startMeasuring()
	}

	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop()
		}()
	}
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			defer close(progressDone)
			r.progress()
		}()
	} else {
		close(progressDone)
	}
	wg.Wait()
	r.finish() // all workers ended on their own: nothing left to measure
	<-progressDone
	return r.result(), nil
}

// runner is the state of one Run shared by its workers.
type runner struct {
	cfg      Config
	tokens   []frame.Token // direct preambles, by shard
	plan     keyPlan       // how connections present their keys
	tls      *tls.Config
	dialer   net.Dialer
	ctx      context.Context // done when the run stops
	cancel   context.CancelFunc
	workers  []*worker
	reasons  reasons      // the first error of each kind, as text
	errCount atomic.Int64 // errors counted, for cfg.MaxErrors

	measuring atomic.Bool
	completed atomic.Int64 // counted requests, when cfg.Requests is set

	mu           sync.Mutex
	start        time.Time
	measureStart time.Time // zero until the warmup ends
	end          time.Time // zero until the run stops
	durTimer     *time.Timer
}

// clientTLS returns the TLS configuration connections use, or nil.
func clientTLS(cfg *Config) *tls.Config {
	if cfg.TLS == nil {
		return nil
	}
	t := cfg.TLS.Clone()
	if t.MinVersion == 0 {
		t.MinVersion = tls.VersionTLS12
	}
	if cfg.TLSResume && t.ClientSessionCache == nil {
		t.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	if src, _ := keysrc.Parse(cfg.KeyFrom); src.Kind == keysrc.SNI {
		sniTLS(cfg, t) // each connection's ServerName is its key
		return t
	}
	if t.ServerName == "" && !t.InsecureSkipVerify && cfg.network() == "tcp" {
		if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			t.ServerName = host
		}
	}
	return t
}

// startMeasuring ends the warmup.
func (r *runner) startMeasuring() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.end.IsZero() {
		return
	}
	r.measureStart = time.Now()
	r.measuring.Store(true)
	if r.cfg.Requests == 0 {
		r.durTimer = time.AfterFunc(r.cfg.Duration, r.finish)
	}
}

// finish stops the run; the first call sets its end.
func (r *runner) finish() {
	r.mu.Lock()
	if r.end.IsZero() {
		r.end = time.Now()
		r.measuring.Store(false)
		if r.durTimer != nil {
			r.durTimer.Stop()
		}
	}
	r.mu.Unlock()
	r.cancel()
}

// progress calls cfg.Progress every interval until the run stops.
func (r *runner) progress() {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			var reqs, errs int64
			for _, w := range r.workers {
				reqs += w.reqs.Load()
				for i := range w.errs {
					errs += w.errs[i].Load()
				}
			}
			p := Progress{Elapsed: now.Sub(r.start), Warmup: !r.measuring.Load() && r.measureStartIsZero(),
				Requests: reqs, Errors: errs}
			if dt := now.Sub(lastAt).Seconds(); dt > 0 {
				p.RPS = float64(reqs-last) / dt
			}
			last, lastAt = reqs, now
			r.cfg.Progress(p)
		}
	}
}

func (r *runner) measureStartIsZero() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.measureStart.IsZero()
}

// result merges the workers' counts once they have all ended.
func (r *runner) result() *Result {
	res := &Result{Config: r.cfg, Latency: newHist(), Errors: map[string]int64{}}
	r.mu.Lock()
	if !r.measureStart.IsZero() {
		res.Duration = r.end.Sub(r.measureStart)
	}
	r.mu.Unlock()
	for _, w := range r.workers {
		res.Requests += w.reqs.Load()
		res.Latency.Merge(w.hist)
		res.TLSHandshakes += w.tlsHandshakes.Load()
		res.TLSResumed += w.tlsResumed.Load()
		for i := range w.errs {
			if n := w.errs[i].Load(); n > 0 {
				res.Errors[kinds[i]] += n
			}
		}
	}
	for i := range r.reasons {
		if p := r.reasons[i].Load(); p != nil && res.Errors[kinds[i]] > 0 {
			if res.Reasons == nil {
				res.Reasons = map[string]string{}
			}
			res.Reasons[kinds[i]] = *p
		}
	}
	return res
}

// worker runs one closed-loop connection (in Connect mode, one client).
// Its histogram and counters are its own: nothing on the request path is
// shared but the atomic counters the progress line reads.
type worker struct {
	r    *runner
	id   int
	hist *hdrhistogram.Histogram
	reqs atomic.Int64
	errs [numKinds]atomic.Int64
	keys keyPicker
	base []byte // Size+window random bytes; request i is a window of it
	wbuf []byte // scratch for writes
	resp []byte // one reply
	seq  int
	key  []byte // scratch for the key
	head []byte // the HTTP request head of the connection (http-* sources)

	// TLS handshakes completed while measuring, and those that resumed.
	tlsHandshakes, tlsResumed atomic.Int64
}

// window is the number of distinct payloads a worker cycles through, so
// that consecutive requests differ and a reply echoed out of order or
// twice is caught.
const window = 256

func newWorker(r *runner, id int) *worker {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(id)))
	w := &worker{r: r, id: id, hist: newHist(), keys: newKeyPicker(&r.cfg, rng)}
	w.base = make([]byte, r.cfg.Size+window)
	for i := range w.base {
		w.base[i] = byte(rng.Uint32())
	}
	w.resp = make([]byte, r.cfg.Size)
	if r.plan.src.HTTP() {
		w.resp = make([]byte, max(r.cfg.Size, headLimit(&r.plan)))
	}
	return w
}

// payload returns the next request.
func (w *worker) payload() []byte {
	off := w.seq % window
	w.seq++
	return w.base[off : off+w.r.cfg.Size]
}

// fail counts an error of kind k, unless the run is stopping (then the
// error is the stop's doing; a mismatch, bytes that are not the echo,
// never is).
func (w *worker) fail(k int) {
	if w.r.ctx.Err() != nil && k != kMismatch {
		return
	}
	w.errs[k].Add(1)
	if m := w.r.cfg.MaxErrors; m > 0 && w.r.errCount.Add(1) == m {
		w.r.finish()
	}
}

// done counts one verified request of latency lat.
func (w *worker) done(lat time.Duration) {
	r := w.r
	if !r.measuring.Load() {
		return
	}
	if r.cfg.Requests > 0 {
		n := r.completed.Add(1)
		if n > r.cfg.Requests {
			return
		}
		if n == r.cfg.Requests {
			defer r.finish()
		}
	}
	us := int64(lat / time.Microsecond)
	if us < histMin {
		us = histMin
	} else if us > histMax {
		us = histMax
	}
	_ = w.hist.RecordValue(us) // in range by construction
	w.reqs.Add(1)
}

// loop runs connections until the run stops, backing off after failures
// so that a refused port does not spin.
func (w *worker) loop() {
	var bo backoff
	for w.r.ctx.Err() == nil {
		var ok bool
		switch w.r.cfg.Mode {
		case Connect:
			ok = w.connectOnce()
		case Pipeline:
			ok = w.session(w.pipeline)
		default:
			ok = w.session(w.pingpong)
		}
		if ok {
			bo.reset()
		} else {
			bo.wait(w.r.ctx)
		}
	}
}

// backoff is an exponential delay from 1ms to 250ms.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) wait(ctx context.Context) {
	if b.d == 0 {
		b.d = time.Millisecond
	} else if b.d < 250*time.Millisecond {
		b.d *= 2
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
