//go:build race

package tsdb

// raceEnabled: the race detector slows the churn test tenfold.
const raceEnabled = true
