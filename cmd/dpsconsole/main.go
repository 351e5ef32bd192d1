// Command dpsconsole is a terminal console for the Azure IoT Hub Device
// Provisioning Service, with a built-in DPS + IoT Hub emulator.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr}))
}
