package server

import (
	"os/exec"
	"runtime"
)

// spawner starts processes from one goroutine locked to its OS thread for
// as long as the master runs. On Linux a child's parent-death signal
// (Pdeathsig) fires when the *thread* that started it exits, not the
// process (golang/go#27505); a thread Go may retire at any time would
// kill workers at random.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		// Never unlocked: when the loop ends, the goroutine exits and
		// the runtime terminates the thread with it.
		runtime.LockOSThread()
		defer close(s.done)
		for r := range s.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	return s
}

// start starts cmd from the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, err: errc}
	return <-errc
}

// close ends the spawner once no child it started is alive.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}
