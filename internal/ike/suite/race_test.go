//go:build race

// The race detector allocates on its own; allocation tests skip under it.

package suite

const raceEnabled = true
