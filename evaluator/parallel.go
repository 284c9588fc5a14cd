package evaluator

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/etcdgate/etcdgate/tsdb"
)

// Series are evaluated in batches of seriesBatch by up to GOMAXPROCS
// workers; below minParallelSeries one goroutine does it, as handing out
// work would cost more than it saves. A variable so tests can force the
// parallel path on small data.
var (
	minParallelSeries = 512
	seriesBatch       = 64
)

// rangeStepsPerSeries is how many steps of a range query weigh as much
// as one series of an instant query: a series costs its samples (tens
// in an instant query's window, hundreds over a range) and a window
// function at every step.
const rangeStepsPerSeries = 16

// parallelism is how many workers share the work of series series: one
// per minParallelSeries series of an instant query, up to GOMAXPROCS. A
// range query's series weigh 1 + steps/rangeStepsPerSeries each, so that
// a query over a few hundred series over an hour is not left to one
// core.
func (ev *evaluator) parallelism(series int) int {
	return workersFor(series * (1 + ev.numSteps()/rangeStepsPerSeries))
}

// workersFor is the parallelism of series series of an instant query.
func workersFor(series int) int {
	return min(runtime.GOMAXPROCS(0), series/minParallelSeries)
}

// seriesWorker is one goroutine's scratch: an iterator and a sample
// buffer reused from series to series.
type seriesWorker struct {
	it  tsdb.Iterator
	buf []FPoint
	// partial is the worker's scratch for a fused aggregation
	// (aggregate_rollup.go); nil otherwise.
	partial *partialAggregate
	// matched are the members of a shared fold (fold_shared.go) a
	// series matches.
	matched []int
	win     rollupWindow // scratch of rollupPoints
	pts     []FPoint     // a range function's results (histogram_fused.go)
	hist    histTable    // a fused histogram's table
}

// parallelWorkers calls fn for every i in [0, n), from several goroutines
// when n is large, and done (if not nil) in each worker's goroutine when
// it has finished its share. A panic in fn (how evaluation raises errors)
// stops the other workers and is re-raised in the caller's goroutine.
func (ev *evaluator) parallelWorkers(n int, fn func(w *seriesWorker, i int), done func(w *seriesWorker)) {
	ev.parallelBatches(n, n, seriesBatch, fn, done)
}

// parallelBatches is parallelWorkers over n items that are series series
// in all (a fused histogram's item is a histogram), handed out batch
// items at a time.
func (ev *evaluator) parallelBatches(n, series, batch int, fn func(w *seriesWorker, i int), done func(w *seriesWorker)) {
	workers := min(ev.parallelism(series), n)
	if workers <= 1 {
		w := &seriesWorker{}
		for i := range n {
			if i%1024 == 0 {
				ev.checkContext()
			}
			fn(w, i)
		}
		if done != nil {
			done(w)
		}
		return
	}
	var (
		next     atomic.Int64
		failed   atomic.Bool
		panicked any
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					once.Do(func() { panicked = r })
					failed.Store(true)
				}
			}()
			w := &seriesWorker{}
			for !failed.Load() {
				start := int(next.Add(int64(batch))) - batch
				if start >= n {
					if done != nil {
						done(w)
					}
					return
				}
				ev.checkContext()
				for i := start; i < min(start+batch, n); i++ {
					fn(w, i)
				}
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}
