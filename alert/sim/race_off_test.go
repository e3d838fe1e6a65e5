//go:build !race

package sim

const raceShare = 1
