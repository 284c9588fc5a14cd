package ingest

import "fmt"

// Push ingests series produced inside the process (probe findings,
// recording-rule results, ALERTS) through the same validation, relabeling
// and limits as remote-write. series is read only during the call. The
// Result and error mean what they mean for Write.
func (in *Ingester) Push(series []TimeSeries) (Result, error) {
	lim := in.limits.Load()
	sc, _ := in.scratch.Get().(*writeScratch)
	if sc == nil {
		sc = newWriteScratch()
	}
	defer in.putScratch(sc)

	res := Result{Series: len(series)}
	for i := range series {
		res.Samples += len(series[i].Samples) // appendSeries counts histograms
	}
	app := in.store.Appender()
	maxT := in.now().Add(lim.MaxFutureDrift).UnixMilli()
	for i := range series {
		in.appendSeries(app, &series[i], lim, maxT, sc, &res)
	}
	if err := app.Commit(); err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	res.Accepted = res.Samples - res.RefusedSamples - res.DroppedSamples
	in.metrics.samplesAccepted.Add(float64(res.Accepted))
	return res, nil
}
