// Package interop drives the official Azure IoT Node SDKs, unchanged, against
// the emulator. TestMain installs the pinned packages of package-lock.json
// with `npm ci` when node_modules is missing or was installed from another
// lock file.
package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// nodeMissing says why the Node tests cannot run; "" when they can.
var nodeMissing string

const lockStamp = "node_modules/.dpsconsole-lock-sha256"

func TestMain(m *testing.M) {
	if err := installNodePackages(); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func installNodePackages() error {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			nodeMissing = tool + " is not installed; install Node.js 18+ with npm to run the official SDK interop tests"
			return nil
		}
	}
	// Several test processes may start at once (go test ./... and a
	// developer's run): one installs, the others wait for it.
	unlock, err := lockFile("node_modules.lock", 15*time.Minute)
	if err != nil {
		return err
	}
	defer unlock()
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	if have, err := os.ReadFile(lockStamp); err == nil && strings.TrimSpace(string(have)) == want {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in interop/ failed (%v); it needs the npm registry once:\n%s", err, out.String())
	}
	return os.WriteFile(lockStamp, []byte(want+"\n"), 0o644)
}

// lockFile takes an exclusive lock by creating path; a lock older than stale
// is left over from a killed process and is taken over.
func lockFile(path string, stale time.Duration) (unlock func(), err error) {
	for deadline := time.Now().Add(stale); ; time.Sleep(200 * time.Millisecond) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if info, err := os.Stat(path); err == nil && time.Since(info.ModTime()) > stale {
			os.Remove(path)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is still held after %v; remove it if no test is running", path, stale)
		}
	}
}

// startEmulator runs an emulator the SDKs can reach unchanged: DPS on
// 127.0.<block>.1:443 and two hubs on 127.0.<block>.2:443 and .3:443 (the
// SDKs cannot take a port). Each test uses its own block.
func startEmulator(t *testing.T, block int, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	if nodeMissing != "" {
		t.Skip(nodeMissing)
	}
	ip := func(n int) string { return "127.0." + strconv.Itoa(block) + "." + strconv.Itoa(n) + ":443" }
	opts.DataDir = t.TempDir()
	opts.HTTPSAddr = ip(1)
	opts.HubAddrs = []string{ip(2), ip(3)}
	e, err := emulator.Start(context.Background(), opts)
	if errors.Is(err, syscall.EACCES) {
		t.Skipf("the SDKs need the emulator on port 443, which needs root here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// runNode runs js/<script> with the emulator's env lines and its CA trusted,
// and fails the test when the script fails. It returns the script's output.
func runNode(t *testing.T, e *emulator.Emulator, script string, extraEnv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := e.Env()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("js", script))
	cmd.Env = append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+env.CAFile,
		"RUN_ID="+strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
	)
	for line := range strings.Lines(env.String()) {
		cmd.Env = append(cmd.Env, strings.TrimSpace(line))
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("node %s:\n%s", script, out.String())
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	return out.String()
}

// serviceClient is a DPS service client for e; its connections close with the test.
func serviceClient(t *testing.T, e *emulator.Emulator) *dps.Client {
	t.Helper()
	tr, err := dps.NewTransport(e.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	tr.Timeout = 30 * time.Second // a hung server fails the test, not the package timeout
	t.Cleanup(tr.CloseIdleConnections)
	svc, err := dps.NewClientFromConnectionString(e.Env().DPSConnectionString, &dps.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// hashedGroup creates a hashed symmetric-key group with fresh keys and
// returns its primary key.
func hashedGroup(ctx context.Context, t *testing.T, svc *dps.Client, id string) keys.Key {
	t.Helper()
	gk := keys.GenerateKey()
	if _, err := svc.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: id, AllocationPolicy: dps.AllocationHashed,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(gk.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}, nil); err != nil {
		t.Fatal(err)
	}
	return gk
}
