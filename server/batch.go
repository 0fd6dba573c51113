package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// BatchEngine is an Engine that can run the decode steps of several
// sequences in one forward pass, reading the weights once for all of them.
type BatchEngine interface {
	Engine
	// DecodeBatch feeds tokens[i] to seqs[i] (sequences of this engine) and
	// returns each one's Result with the logits of that position.
	DecodeBatch(ctx context.Context, seqs []Sequence, tokens []int32) ([]*Result, error)
}

// batcher gathers the decode steps of a model's generating requests and
// runs them as one batched forward pass (continuous batching): requests
// join and leave between steps, each at its own position.
type batcher struct {
	eng BatchEngine
	// linger is how long a batch waits for the other generating requests
	// to submit their step, so that they go together.
	linger time.Duration

	mu      sync.Mutex
	queue   []*decodeStep
	members int // requests in their decode loop
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	batches, steps atomic.Int64  // for tests
	observe        func(float64) // gets each pass's batch size

	// Owned by run: buffers reused from pass to pass, so that a decode
	// step costs no allocation of the batcher's own.
	spare  []*decodeStep
	seqs   []Sequence
	tokens []int32
}

type decodeStep struct {
	seq   Sequence
	token int32
	taken bool // picked for a batch: the caller must wait for it
	res   *Result
	err   error
	ready chan struct{}
}

func newBatcher(eng BatchEngine, observe func(float64)) *batcher {
	b := &batcher{eng: eng, observe: observe, linger: 500 * time.Microsecond, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// close stops the batcher goroutine once the queue is empty of callers.
func (b *batcher) close() {
	close(b.stop)
	<-b.done
}

func (b *batcher) join() {
	b.mu.Lock()
	b.members++
	b.mu.Unlock()
}

func (b *batcher) leave() {
	b.mu.Lock()
	b.members--
	b.mu.Unlock()
	b.signal() // a batch may be waiting for this member
}

func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// decode runs one decode step of seq through the next batch. If ctx ends
// while the step is in a running batch, decode still waits for it: the
// sequence must not be reused while the batch writes to it.
func (b *batcher) decode(ctx context.Context, seq Sequence, token int32) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := &decodeStep{seq: seq, token: token, ready: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, st)
	b.mu.Unlock()
	b.signal()
	select {
	case <-st.ready:
		return st.res, st.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !st.taken {
		for i, q := range b.queue {
			if q == st {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		return nil, ctx.Err()
	}
	b.mu.Unlock()
	<-st.ready
	return nil, ctx.Err()
}

func (b *batcher) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := func() (int, int) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue), b.members
	}
	for {
		select {
		case <-b.stop:
			return
		case <-b.wake:
		}
		for {
			n, members := pending()
			if n == 0 {
				break
			}
			// Give the other generating requests a moment to submit their
			// step (or leave), so that they share the pass.
			deadline := time.Now().Add(b.linger)
			for n < members {
				d := time.Until(deadline)
				if d <= 0 {
					break
				}
				timer.Reset(d)
				select {
				case <-b.wake:
					timer.Stop()
				case <-timer.C:
				case <-b.stop:
					return
				}
				n, members = pending()
			}
			b.mu.Lock()
			batch := b.queue
			b.queue = b.spare[:0]
			for _, st := range batch {
				st.taken = true
			}
			b.mu.Unlock()
			if len(batch) > 0 {
				b.exec(batch)
			}
			clear(batch) // drop the finished steps
			b.spare = batch[:0]
		}
	}
}

func (b *batcher) exec(batch []*decodeStep) {
	b.seqs, b.tokens = b.seqs[:0], b.tokens[:0]
	for _, st := range batch {
		b.seqs = append(b.seqs, st.seq)
		b.tokens = append(b.tokens, st.token)
	}
	// The batch runs to its end whatever its callers do: it is one step.
	res, err := b.eng.DecodeBatch(context.Background(), b.seqs, b.tokens)
	b.batches.Add(1)
	b.steps.Add(int64(len(batch)))
	b.observe(float64(len(batch)))
	for i, st := range batch {
		if err != nil {
			st.err = err
		} else {
			st.res = res[i]
		}
		close(st.ready)
	}
}
