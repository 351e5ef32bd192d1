package hub

import "time"

// SetReconnectDelay makes a dropped device wait d before it reconnects,
// so a test can change the twin while the device is away.
func SetReconnectDelay(d time.Duration) (restore func()) {
	old := reconnectFirst
	reconnectFirst = d
	return func() { reconnectFirst = old }
}

// DataAction is hubDataAction, for the tests of the mapping.
var DataAction = hubDataAction
