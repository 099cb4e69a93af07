package engine

import "errors"

// Close stops Run, if it runs, and restores the host, in the reverse order
// of Run's setup:
//
//  1. the connection ends, then the apps' flows are reset while the routes
//     and the interface still carry the resets (an app told nothing would
//     hang until its next write timed out). The connection goes first: a
//     flow's relay waits in its channel's Read until the server answers
//     the channel's close, which on a dead path it never does; with the
//     connection ended, every channel ends at once;
//  2. the plan is reverted: split DNS, the routes, the TUN's address;
//  3. the DNS proxy stops;
//  4. the netstack stops and closes the TUN (on Linux the interface goes
//     with it).
//
// Close returns the errors of these steps joined, once the host is
// restored. The transports' goodbyes go on after it returns (an SSM
// session's TerminateSession takes a few seconds on a dead path); Wait is
// closed when they are over. Close is idempotent: later calls return the
// first call's result.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		stop, running := e.stopRun, e.running
		e.mu.Unlock()
		if stop != nil {
			stop()
			<-running
		}
		goodbyes, err := e.teardown()
		e.closeErr = err
		e.move(StateDown)
		go func() { // ends with the last goodbye
			<-goodbyes
			close(e.done)
		}()
	})
	return e.closeErr
}

// teardown undoes what Run set up (see Close) and returns a channel closed
// when every connection is closed, with the errors joined.
func (e *Engine) teardown() (goodbyes <-chan struct{}, err error) {
	e.mu.Lock()
	up, p := e.up, e.pool
	e.mu.Unlock()
	done := make(chan struct{})
	goodbyes = done
	if p != nil {
		goodbyes = p.close()
	} else {
		close(done)
	}
	if up == nil {
		return goodbyes, nil
	}
	var errs []error
	if up.stack != nil {
		up.stack.ResetFlows()
	}
	if up.applied {
		errs = append(errs, e.plan.Revert())
	}
	if up.dns != nil {
		errs = append(errs, up.dns.Close())
	}
	if up.stack != nil {
		errs = append(errs, up.stack.Close())
	}
	return goodbyes, errors.Join(errs...)
}
