package ingest

// Push ingests series produced inside the process (probe findings,
// recording-rule results, ALERTS) through the same validation, relabeling
// and limits as remote-write. series is read only during the call. The
// Result and error mean what they mean for Write.
func (in *Ingester) Push(series []TimeSeries) (Result, error) {
	sc := in.getScratch()
	defer in.putScratch(sc)
	res := Result{Series: len(series)}
	for i := range series {
		res.Samples += len(series[i].Samples) // appendSeries counts histograms
	}
	return in.appendAll(series, in.limits.Load(), sc, res)
}
