//go:build race

package main

// raceEnabled is true when the tests run under -race; the gateway binary is
// then built with -race too, so the process tests also hunt data races in it.
const raceEnabled = true
