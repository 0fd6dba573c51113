package model

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// task is one parallel step of the forward pass, cut into items (chunks of
// matrix rows, attention heads) that workers claim one at a time.
type task interface {
	do(worker, item int)
}

// pool is a fixed set of worker goroutines started once per model. The
// caller of run works too, so n threads means n-1 goroutines.
//
// Items are claimed from one atomic word holding the dispatch's generation,
// its item count and the next unclaimed item. run returns when every item
// is done, whoever did it: a worker that the operating system has not
// scheduled yet holds nothing up, which matters on a busy machine. A
// claim compares the whole word, so a late worker can never take an item
// of a later dispatch by mistake. Handing a task over costs one atomic
// store, plus a broadcast only when some worker has gone to sleep; nothing
// is allocated.
type pool struct {
	n int

	claim    atomic.Uint64 // gen<<36 | total<<18 | next
	done     atomic.Int64  // items finished in the current dispatch
	sleepers atomic.Int32  // workers parked on wake
	waiting  atomic.Bool   // the caller is parked on finished
	t        task          // written before the claim word is published

	mu       sync.Mutex
	wake     *sync.Cond // workers wait here for the next dispatch
	finished *sync.Cond // the caller waits here for the last item
	closed   bool
	wg       sync.WaitGroup
}

const (
	itemBits = 18
	maxItems = 1<<itemBits - 1
	itemMask = 1<<itemBits - 1
	genShift = 2 * itemBits
)

// spinRounds is how long an idle thread polls before parking: long enough
// to stay awake between the steps of a forward pass, short enough not to
// burn a core between requests.
const spinRounds = 20000

func newPool(n int) *pool {
	if n < 1 {
		n = 1
	}
	p := &pool{n: n}
	p.wake = sync.NewCond(&p.mu)
	p.finished = sync.NewCond(&p.mu)
	for w := 1; w < n; w++ {
		p.wg.Add(1)
		go p.worker(w)
	}
	return p
}

// run executes items [0,total) of t on all workers and returns when all
// are done. Calls must not overlap.
func (p *pool) run(t task, total int) {
	if total > maxItems {
		panic(fmt.Sprintf("model: %d work items exceed the pool's limit of %d", total, maxItems))
	}
	if p.n == 1 || total <= 1 {
		for i := range total {
			t.do(0, i)
		}
		return
	}
	p.t = t
	p.done.Store(0)
	gen := (p.claim.Load()>>genShift + 1) & (1<<(64-genShift) - 1)
	p.claim.Store(gen<<genShift | uint64(total)<<itemBits)
	if p.sleepers.Load() > 0 {
		p.mu.Lock()
		p.wake.Broadcast()
		p.mu.Unlock()
	}
	p.work(0)
	for i := 0; p.done.Load() != int64(total); i++ {
		if i < spinRounds {
			if i%64 == 63 {
				runtime.Gosched()
			}
			continue
		}
		p.mu.Lock()
		p.waiting.Store(true)
		for p.done.Load() != int64(total) {
			p.finished.Wait()
		}
		p.waiting.Store(false)
		p.mu.Unlock()
		break
	}
	p.t = nil
}

// work claims and does items of the current dispatch until none is left.
func (p *pool) work(w int) {
	for {
		v := p.claim.Load()
		total, next := int(v>>itemBits&itemMask), int(v&itemMask)
		if next >= total {
			return
		}
		if !p.claim.CompareAndSwap(v, v+1) {
			continue
		}
		p.t.do(w, next)
		if p.done.Add(1) == int64(total) && p.waiting.Load() {
			p.mu.Lock()
			p.finished.Signal()
			p.mu.Unlock()
		}
	}
}

func (p *pool) worker(w int) {
	defer p.wg.Done()
	seen := p.claim.Load() >> genShift
	for {
		g := p.claim.Load() >> genShift
		for i := 0; g == seen && i < spinRounds; i++ {
			if i%64 == 63 {
				runtime.Gosched()
			}
			g = p.claim.Load() >> genShift
		}
		if g == seen {
			p.mu.Lock()
			p.sleepers.Add(1)
			for p.claim.Load()>>genShift == seen && !p.closed {
				p.wake.Wait()
			}
			p.sleepers.Add(-1)
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			g = p.claim.Load() >> genShift
		}
		seen = g
		p.work(w)
	}
}

// close stops the workers. The pool must be idle.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
