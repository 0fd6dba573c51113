package server

import (
	"context"
	"sync"
	"sync/atomic"
)

// scheduler hands a model's slots to requests: up to len(slots) generate at
// once, up to queue more wait in arrival order, the rest get 429.
//
// Every forward pass of a request goes through its slot's Sequence, one
// request per slot, so decode steps of several slots are independent; a
// batched forward pass (continuous batching) can later gather the pending
// decode step of every busy slot without changing the request code.
type scheduler struct {
	ctxLen int
	queue  int
	newSeq func(ctxLen int) Sequence
	batch  *batcher // nil: every request runs its own forward passes

	mu      sync.Mutex
	free    []*slot
	waiters []chan *slot

	waiting atomic.Int64 // queue depth, for metrics
	active  atomic.Int64
}

// slot is one generation lane: a Sequence and the tokens its KV cache
// holds, kept between requests for prompt-cache reuse.
type slot struct {
	id     int
	seq    Sequence
	tokens []int32 // the tokens at positions [0, seq.Len())
}

// newScheduler makes parallel slots for eng. With observeBatch set (to
// record batch sizes) and an engine that can, decode steps are batched.
func newScheduler(parallel, queue, ctxLen int, observeBatch func(float64), eng Engine) *scheduler {
	s := &scheduler{ctxLen: ctxLen, queue: queue, newSeq: eng.NewSequence}
	if be, ok := eng.(BatchEngine); ok && observeBatch != nil && parallel > 1 {
		s.batch = newBatcher(be, observeBatch)
	}
	for i := range parallel {
		s.free = append(s.free, &slot{id: i})
	}
	return s
}

// acquire waits for a free slot, preferring the one whose cached tokens
// share the longest prefix with prompt.
func (s *scheduler) acquire(ctx context.Context, prompt []int32) (*slot, error) {
	s.mu.Lock()
	if len(s.free) > 0 {
		best, bestLen := 0, -1
		for i, sl := range s.free {
			if n := commonPrefix(sl.tokens, prompt); n > bestLen {
				best, bestLen = i, n
			}
		}
		sl := s.free[best]
		s.free = append(s.free[:best], s.free[best+1:]...)
		s.mu.Unlock()
		s.active.Add(1)
		return sl, nil
	}
	if len(s.waiters) >= s.queue {
		s.mu.Unlock()
		return nil, errQueueFull
	}
	ch := make(chan *slot, 1)
	s.waiters = append(s.waiters, ch)
	s.waiting.Add(1)
	s.mu.Unlock()

	select {
	case sl := <-ch:
		s.active.Add(1)
		return sl, nil
	case <-ctx.Done():
		s.mu.Lock()
		for i, w := range s.waiters {
			if w == ch {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				s.waiting.Add(-1)
				s.mu.Unlock()
				return nil, ctx.Err()
			}
		}
		s.mu.Unlock()
		// A slot was handed to us as we gave up: pass it on.
		s.active.Add(1)
		s.release(<-ch)
		return nil, ctx.Err()
	}
}

// release returns sl to the next waiter or the free list.
func (s *scheduler) release(sl *slot) {
	s.active.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) > 0 {
		ch := s.waiters[0]
		s.waiters = s.waiters[1:]
		s.waiting.Add(-1)
		ch <- sl
		return
	}
	s.free = append(s.free, sl)
}

// close stops the batcher; the model has no requests left.
func (s *scheduler) close() {
	if s.batch != nil {
		s.batch.close()
	}
}

// sequence returns the slot's Sequence, created on first use.
func (s *scheduler) sequence(sl *slot) Sequence {
	if sl.seq == nil {
		sl.seq = s.newSeq(s.ctxLen)
	}
	return sl.seq
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
