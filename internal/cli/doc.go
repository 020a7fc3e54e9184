// Package cli is what every tokencache command shares: the Factory that hands
// out IO streams and the token store, the store settings that every command
// opening the store accepts as flags and environment variables, and the typed
// errors that ExitCode maps onto the exit status, in one place.
package cli
