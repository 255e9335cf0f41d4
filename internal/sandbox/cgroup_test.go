package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// A gateway that died (SIGKILL, and its helpers with it) leaves its cgroup
// behind, maybe with processes in it; the next gateway kills and removes it.
func TestStaleCgroupsAreRemoved(t *testing.T) {
	base, err := ownCgroup()
	probe := openCgroups()
	if err != nil || probe == nil {
		t.Skipf("cgroup v2 is not delegated to this user here (%v)", err)
	}
	if err := probe.close(); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(base, cgroupPrefix+strconv.Itoa(dead.Process.Pid)+"-123")
	run := filepath.Join(stale, "run-1")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	left := exec.Command("sleep", "300")
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	go left.Wait()
	if err := os.WriteFile(filepath.Join(run, "cgroup.procs"), []byte(strconv.Itoa(left.Process.Pid)), 0); err != nil {
		left.Process.Kill()
		t.Fatal(err)
	}
	c := openCgroups()
	if c == nil {
		t.Fatal("openCgroups failed")
	}
	defer c.close()
	testutil.WaitGone(t, left.Process.Pid)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale cgroup %s is still there (%v)", stale, err)
	}
}
