//go:build race

package main

// raceEnabled: the race detector makes sync.Pool drop entries at random,
// so allocation counts are not checked under it.
const raceEnabled = true
