package config

import "testing"

// TestPackagedConfig checks the config file the Debian package installs as
// /etc/picoflow/config.yaml (scripts/deb/config.yaml).
func TestPackagedConfig(t *testing.T) {
	c, err := Load("../../scripts/deb/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Paths.WorkflowsDir != "/etc/picoflow/workflows" || c.Paths.Home != "" {
		t.Errorf("paths = %+v; want workflows_dir /etc/picoflow/workflows and no home (the unit passes --home)", c.Paths)
	}
}
