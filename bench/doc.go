// Package bench measures Picket at scale: the real scheduler and the real journey runner
// probing thousands of targets on loopback HTTP servers that run in a child process, so
// that the CPU and memory figures are Picket's alone. Run starts one such run and returns
// a Report; Table prints reports as markdown. bench/run-scale.sh runs the usual sizes.
package bench
