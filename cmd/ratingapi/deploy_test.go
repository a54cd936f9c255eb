package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestComposeFileIsValid asks docker-compose to check compose.yaml.
func TestComposeFileIsValid(t *testing.T) {
	tool, err := exec.LookPath("docker-compose")
	if err != nil {
		msg := "docker-compose not found on PATH; install it (Debian: apt-get install -y docker-compose)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this fails instead of skipping")
		}
		t.Skip(msg)
	}

	cmd := exec.Command(tool, "-f", "../../compose.yaml", "config", "-q")
	cmd.Env = append(os.Environ(), "REDIS_PASSWORD=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}

	// With no REDIS_PASSWORD set, the documented local default applies to
	// Redis and the API alike.
	cmd = exec.Command(tool, "-f", "../../compose.yaml", "config")
	cmd.Env = withoutVar(os.Environ(), "REDIS_PASSWORD")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v", err)
	}
	text := string(out)
	if n := strings.Count(text, "local-dev-only"); n != 3 {
		t.Errorf("the default password appears %d times, want 3 (requirepass, "+
			"redis-cli, API):\n%s", n, text)
	}
	for _, want := range []string{"appendonly", "REDIS_HOST: redis", "healthcheck",
		"condition: service_healthy", "dockerfile: cmd/ratingapi/Dockerfile"} {
		if !strings.Contains(text, want) {
			t.Errorf("compose config lacks %q", want)
		}
	}
}

// TestDockerfile checks the properties of the image that need no Docker
// daemon to see: a build stage, a static binary, a non-root user.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if n := strings.Count(text, "\nFROM "); n < 2 {
		t.Errorf("%d FROM lines, want a multi-stage build", n)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "./cmd/ratingapi"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func withoutVar(environ []string, name string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
