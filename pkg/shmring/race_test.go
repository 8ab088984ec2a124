//go:build race

package shmring

// raceEnabled: the race detector slows each message down about tenfold.
const raceEnabled = true
