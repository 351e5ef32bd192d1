package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// emulatorCommand runs `dpsconsole emulator args...` until the test stops
// it, and returns its output so far once want appears in stdout (or, with
// inStderr, in stderr); stop cancels it and returns its exit code.
func emulatorCommand(t *testing.T, want string, inStderr bool, args ...string) (out, errOut *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"emulator"}, args...), stdio{in: strings.NewReader(""), out: out, err: errOut})
	}()
	stop = sync.OnceValue(func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatal("the emulator did not stop on cancel")
			return -1
		}
	})
	t.Cleanup(func() { stop() })
	watched := out
	if inStderr {
		watched = errOut
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(watched.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never showed %q; stdout %q stderr %q", want, out.String(), errOut.String())
		}
	}
	return out, errOut, stop
}

func TestEmulatorCommandRunsAndStops(t *testing.T) {
	dir := t.TempDir()
	out, errOut, stop := emulatorCommand(t, "IOTHUB_MQTT_ENDPOINT_2=", false, // the last line
		"--data", dir, "--https", "127.0.0.1:0", "--seed", "none", "--throttle", "1000/min")
	file, err := os.ReadFile(filepath.Join(dir, "emulator.env"))
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != out.String() {
		t.Errorf("printed lines differ from emulator.env:\n%s\n%s", out.String(), file)
	}
	for _, k := range []string{"DPS_CONNECTION_STRING=HostName=127.0.0.1:", "DPS_ID_SCOPE=0ne", "DPS_DEVICE_ENDPOINT=127.0.0.1:", "DPS_MQTT_ENDPOINT=127.0.0.1:", "IOTHUB_MQTT_ENDPOINT_1=127.0.0.1:", "DPS_CA_FILE=" + filepath.Join(dir, "ca.pem"), "IOTHUB_CONNECTION_STRING=HostName="} {
		if !strings.Contains(out.String(), k) {
			t.Errorf("output lacks %q:\n%s", k, out.String())
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after Ctrl-C; stderr %s", code, errOut.String())
	}
}

func TestEmulatorCommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"emulator", "--throttle", "fast"},
		{"emulator", "--fault-rate", "2"},
		{"emulator", "--seed", "lots"},
		{"emulator", "--entra-addr", "127.0.0.1:0"},
		{"emulator", "--disable-local-auth"},
		{"emulator", "--entra", "--device-code", "admin"},
		{"emulator", "--entra", "--entra-addr", "nowhere"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errOut}); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; %s", args, code, exitUsage, errOut.String())
		}
	}
}

// The flags that pick a target to talk to mean nothing to the emulator,
// which is one: given to it they are refused, not silently ignored.
func TestEmulatorCommandRefusesTargetFlags(t *testing.T) {
	for _, flags := range [][]string{
		{"--dps", "contoso-dps"}, {"--auth", "sas-from-arm"}, {"--target", "azure"}, {"--tenant", "contoso.onmicrosoft.com"},
		{"--resource-group", "iot-rg"}, {"--subscription", "Contoso IoT"}, {"--connection-string", "HostName=x;SharedAccessKeyName=y;SharedAccessKey=eg=="},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // a start that is not refused ends here
		args := append([]string{"emulator", "--entra", "--state-dir", t.TempDir(), "--https", "127.0.0.1:0"}, flags...)
		var out, errOut bytes.Buffer
		code := run(ctx, args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
		cancel()
		if code != exitUsage || !strings.Contains(errOut.String(), flags[0]) {
			t.Errorf("%v: exit %d, want %d naming %s; %s", flags, code, exitUsage, flags[0], errOut.String())
		}
	}
}

func TestEmulatorCommandEntraWritesPrincipals(t *testing.T) {
	dir := t.TempDir()
	out, errOut, stop := emulatorCommand(t, "DPS_RESOURCE_GROUP=", false, // the last line
		"--data", dir, "--https", "127.0.0.1:0", "--seed", "none", "--mqtt", "off", "--entra")
	for _, k := range []string{"AZURE_TENANT_ID=", "AZURE_CLIENT_ID=", "AZURE_CLIENT_SECRET=", "DPS_READER_CLIENT_ID=", "DPS_READER_CLIENT_SECRET=", "AZURE_AUTHORITY_HOST=https://127.0.0.1:", "AZURE_RESOURCE_MANAGER_ENDPOINT=https://127.0.0.1:", "AZURE_SUBSCRIPTION_ID=", "DPS_NAME="} {
		if !strings.Contains(out.String(), k) {
			t.Errorf("output lacks %q:\n%s", k, out.String())
		}
	}
	if strings.Contains(errOut.String(), "SECRET") {
		t.Errorf("the log names a secret:\n%s", errOut.String())
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut.String())
	}
}

// TestEmulatorMQTTOffWritesNoEmptyLine checks that --mqtt off leaves the
// MQTT endpoint lines out of the env lines (and emulator.env) instead of
// writing an empty DPS_MQTT_ENDPOINT=, which a shell would export as "".
func TestEmulatorMQTTOffWritesNoEmptyLine(t *testing.T) {
	dir := t.TempDir()
	out, _, stop := emulatorCommand(t, "emulator running", true,
		"--data", dir, "--https", "127.0.0.1:0", "--seed", "none", "--mqtt", "off")
	file, err := os.ReadFile(filepath.Join(dir, "emulator.env"))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"stdout": out.String(), "emulator.env": string(file)} {
		if !strings.Contains(text, "DPS_CONNECTION_STRING=HostName=") || strings.Contains(text, "MQTT_ENDPOINT") {
			t.Errorf("%s with --mqtt off: want the connection string and no MQTT endpoint line:\n%s", name, text)
		}
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if _, v, _ := strings.Cut(l, "="); v == "" {
				t.Errorf("%s: empty line %q", name, l)
			}
		}
	}
	stop()
}
