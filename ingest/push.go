package ingest

// Push ingests series produced inside the process (probe findings,
// recording-rule results, ALERTS) through the same validation, relabeling
// and limits as remote-write. series is read only during the call. The
// Result and error mean what they mean for Write.
//
// In a ring the series are placed on their owners like a remote write
// (appendAllRing), so a recording rule's series has the owners any
// series of its labels has, whichever node evaluated it; HA dedup does
// not apply: these series come from this process, not a scraper pair.
func (in *Ingester) Push(series []TimeSeries) (Result, error) {
	sc := in.getScratch()
	defer in.putScratch(sc)
	res := Result{Series: len(series)}
	for i := range series {
		res.Samples += len(series[i].Samples) // appendSeries counts histograms
	}
	if in.ring != nil {
		sc.push = true
		return in.appendAllRing(series, in.limits.Load(), sc, res)
	}
	return in.appendAll(series, in.limits.Load(), sc, res)
}
