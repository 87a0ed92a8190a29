//go:build !race

package esphook

const raceEnabled = false
