package tui

// writeCommands are the `:` commands whose whole purpose writes to the
// target, with why: under --readonly they are hidden and refused, as delete is.
var writeCommands = map[string]string{
	"simulate": "a simulated registration is a write (it can move a device to another hub or reset its twin)",
	"fleet":    "a fleet run registers devices, and a registration is a write",
	"tutorial": "the tutorial creates and deletes a group, a registration and a hub device",
}

// readOnlyRefusal says why command name is off, or "" when it may run.
func readOnlyRefusal(readOnly bool, name string) string {
	if why := writeCommands[name]; readOnly && why != "" {
		return ":" + name + " is off in read-only mode: " + why
	}
	return ""
}
