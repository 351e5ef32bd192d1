package interop

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// BenchmarkExportVsNode times `dpsconsole registrations export --format
// jsonl` of 100,000 records against the official Node service SDK listing
// the same records with its registration-state query and writing them as
// JSON lines (js/export_registrations.js), side by side in one run: both are
// whole processes (start included) against the same in-process emulator.
// Run: go test ./interop -run '^$' -bench ExportVsNode -benchtime 3x
func BenchmarkExportVsNode(b *testing.B) {
	const records, group = 100_000, "export-bench"
	if nodeMissing != "" {
		b.Skip(nodeMissing)
	}
	emu, err := emulator.Start(context.Background(), emulator.Options{DataDir: b.TempDir(), HTTPSAddr: "127.0.77.1:443",
		HubAddrs: []string{"127.0.77.2:443", "127.0.77.3:443"}})
	if errors.Is(err, syscall.EACCES) {
		b.Skipf("the Node SDK needs the emulator on port 443, which needs root here: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { emu.Close() })
	if err := emu.SeedRegistrations(context.Background(), group, records); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "dpsconsole")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/dpsconsole").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "NODE_EXTRA_CA_CERTS="+emu.Env().CAFile, "EXPORT_GROUP="+group)
	for line := range strings.Lines(emu.Env().String()) {
		env = append(env, strings.TrimSpace(line))
	}
	goFile, nodeFile := filepath.Join(dir, "go.jsonl"), filepath.Join(dir, "node.jsonl")
	// run returns the wall time and the CPU time (user + system) of the
	// process; the CPU, unlike the wall time, does not move with what else
	// the shared cores run.
	run := func(cmd *exec.Cmd) (wall, cpu time.Duration) {
		cmd.Env = append(env, "EXPORT_FILE="+nodeFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v: %v\n%s", cmd.Args, err, out.String())
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	exportCmd := func(group string) *exec.Cmd {
		return exec.Command(bin, "--state-dir", filepath.Join(dir, "state"), "registrations", "export", "--group", group,
			"--format", "jsonl", "--output-file", goFile)
	}
	// The fixed cost of a dpsconsole process: start, target, one empty page.
	startWall, startCPU := run(exportCmd("no-records"))
	var goTime, nodeTime, goCPU, nodeCPU time.Duration
	for b.Loop() {
		wall, cpu := run(exportCmd(group))
		goTime, goCPU = goTime+wall, goCPU+cpu
		wall, cpu = run(exec.Command("node", filepath.Join("js", "export_registrations.js")))
		nodeTime, nodeCPU = nodeTime+wall, nodeCPU+cpu
	}
	goOut, _ := os.ReadFile(goFile)
	nodeOut, _ := os.ReadFile(nodeFile)
	if n := bytes.Count(goOut, []byte("\n")); n != records {
		b.Fatalf("dpsconsole wrote %d lines, want %d", n, records)
	}
	if n := bytes.Count(nodeOut, []byte("\n")); n != records {
		b.Fatalf("node wrote %d lines, want %d", n, records)
	}
	if !bytes.Equal(goOut, nodeOut) {
		b.Log("the two files differ (Node re-encodes each record)")
	}
	per := func(d time.Duration) float64 { return float64(records) * float64(b.N) / d.Seconds() }
	b.ReportMetric(per(goTime), "dpsconsole-records/s")
	b.ReportMetric(per(nodeTime), "node-records/s")
	b.ReportMetric(nodeTime.Seconds()/goTime.Seconds(), "speedup")
	b.ReportMetric(float64(goCPU.Nanoseconds())/float64(records*b.N), "dpsconsole-cpu-ns/record")
	b.ReportMetric(float64(nodeCPU.Nanoseconds())/float64(records*b.N), "node-cpu-ns/record")
	b.ReportMetric(float64(startWall.Milliseconds()), "dpsconsole-empty-ms")
	b.ReportMetric(float64(startCPU.Milliseconds()), "dpsconsole-empty-cpu-ms")
	b.ReportMetric(0, "ns/op")
}
