package devenv

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

// ErrNotCurrent is returned (wrapped, saying what differs) by Attach when
// the environment is not the one the configuration describes, or not ready.
var ErrNotCurrent = errors.New("the environment is not current")

// Share turns Up's exclusive project lock into a shared one: from now on
// the environment is only used (tests run against it), so other users can
// Attach, while another Up or a Down waits until Close.
func (e *Env) Share(ctx context.Context) error {
	return e.lock.downgrade(ctx)
}

// upRecord is what the last Up (or update while watching) left, kept in the
// state folder beside the project's lock: what Attach compares with.
type upRecord struct {
	// Objects is a keyed hash (HMAC, so no Secret value can be guessed from
	// it) of every object Up applied.
	Objects string            `json:"objects"`
	Images  map[string]string `json:"images"`
	// Applied is each object's version after the last apply
	// (cluster.ApplyResult.Versions): a warm up that renders the same
	// objects and finds them at these versions skips the apply.
	Applied map[string]string `json:"applied,omitempty"`
	// AppliedObjects is the keyed hash of the objects that apply applied
	// (Objects may be newer: a live update changes the images without an
	// apply).
	AppliedObjects string    `json:"appliedObjects,omitempty"`
	Kafka          string    `json:"kafka,omitempty"` // the broker's address on the network
	H2             string    `json:"h2,omitempty"`
	PID            int       `json:"pid"`
	Time           time.Time `json:"time"`
}

func recordFile(id project.ID) (string, error) {
	dir, err := dirs.State()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "project-"+id.String()+".up.json"), nil
}

// objectsHash is the keyed hash of the objects rendered for cfg with these
// images and external addresses.
func objectsHash(cfg *config.Config, images, ext map[string]string, key []byte) (string, error) {
	objs, err := render.Objects(cfg, render.Options{ExternalIPs: ext, Images: images, ShowSecrets: true, HashKey: key})
	if err != nil {
		return "", err
	}
	return hashObjects(objs, key)
}

// hashObjects is the keyed hash of rendered objects.
func hashObjects(objs []*unstructured.Unstructured, key []byte) (string, error) {
	mac := hmac.New(sha256.New, key)
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			return "", err
		}
		mac.Write(b)
		mac.Write([]byte{0})
	}
	return hex.EncodeToString(mac.Sum(nil)), nil
}

// writeRecord notes what the loop applied last, for Attach. Best effort: a
// missing record only makes Attach refuse.
func (e *Env) writeRecord() {
	l := e.loop
	path, err := recordFile(ProjectID(l.cfg))
	if err == nil {
		var h string
		if h, err = objectsHash(l.cfg, l.images, l.ext, l.hashKey); err == nil {
			rec := upRecord{Objects: h, Images: l.images, Applied: l.lastApply.Versions, AppliedObjects: l.appliedHash, Kafka: l.ext[render.ComponentKafka], H2: l.ext[render.ComponentH2],
				PID: os.Getpid(), Time: time.Now()}
			var b []byte
			if b, err = json.Marshal(rec); err == nil {
				tmp := path + ".tmp"
				if err = os.WriteFile(tmp, b, 0o600); err == nil {
					err = os.Rename(tmp, path)
				}
			}
		}
	}
	if err != nil {
		e.opts.logger().Debugf("recording the environment for tests: %v", err)
	}
}

func readRecord(id project.ID) (upRecord, error) {
	var rec upRecord
	path, err := recordFile(id)
	if err != nil {
		return rec, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return rec, fmt.Errorf("%w: no devenv up has finished for project %s on this machine", ErrNotCurrent, id)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%w: reading %s: %v", ErrNotCurrent, path, err)
	}
	return rec, nil
}

// Attach returns the environment another devenv process brought up (a
// `devenv up` that watches, or a test binary's Up), without changing it: it
// takes the project's lock shared (waiting, up to Options.LockWait, for a
// process that is creating or changing the environment), then checks that
// the environment is what cfg describes: the cluster answers, the Kafka and
// H2 containers run where the last up pointed the cluster, the objects the
// last up applied are the ones cfg renders to (same files, same values),
// and every service's Deployment is ready. Otherwise it returns an error
// wrapping ErrNotCurrent that says what differs. The sources are not
// compared: a watching up keeps the images current itself.
//
// The returned Env serves queries and forwards (ForwardService, TestVars),
// not Watch. Close releases the lock; the environment keeps running.
func Attach(ctx context.Context, cfg *config.Config, opts Options) (*Env, error) {
	lk, err := lockProject(ctx, cfg, opts, "attach", lockShared)
	if err != nil {
		return nil, err
	}
	env := &Env{Config: cfg, Images: map[string]string{}, opts: opts, prog: &progress{log: opts.logger()}, lock: lk}
	ok := false
	defer func() {
		if !ok {
			env.Close()
		}
	}()
	id := ProjectID(cfg)
	rec, err := readRecord(id)
	if err != nil {
		return nil, err
	}
	if env.docker, err = dockerx.Connect(ctx); err != nil {
		return nil, err
	}
	ext := map[string]string{}
	if externalKafka(cfg) {
		// Not probed here: the host address is the external one.
		env.Kafka = externalKafkaEndpoint(cfg.Kafka)
		env.Kafka.HostAddress = cfg.Kafka.External
		ext[render.ComponentKafka] = env.Kafka.IP
	} else if cfg.Kafka != nil {
		ep, found, err := kafka.Find(ctx, env.docker, projectKey(cfg))
		switch {
		case err != nil:
			return nil, err
		case !found:
			return nil, fmt.Errorf("%w: the Kafka container of project %s is gone", ErrNotCurrent, cfg.Name)
		case ep.IP != rec.Kafka:
			return nil, fmt.Errorf("%w: the Kafka container moved to %s; the cluster points at %s", ErrNotCurrent, ep.IP, rec.Kafka)
		}
		env.Kafka = &ep
		ext[render.ComponentKafka] = ep.IP
	}
	if externalH2(cfg) {
		env.H2 = externalH2Endpoint(cfg.H2)
		ext[render.ComponentH2] = env.H2.IP
	} else if cfg.H2.Mode == config.H2Server {
		ep, found, err := h2.Find(ctx, env.docker, projectKey(cfg))
		switch {
		case err != nil:
			return nil, err
		case !found || !ep.Running:
			return nil, fmt.Errorf("%w: the H2 container of project %s is not running", ErrNotCurrent, cfg.Name)
		case ep.IP != rec.H2:
			return nil, fmt.Errorf("%w: the H2 container moved to %s; the cluster points at %s", ErrNotCurrent, ep.IP, rec.H2)
		}
		env.H2 = &ep
		ext[render.ComponentH2] = ep.IP
	}
	key, err := dirs.Key(render.ConfigHashKeyName)
	if err != nil {
		return nil, err
	}
	h, err := objectsHash(cfg, rec.Images, ext, key)
	if err != nil {
		return nil, err
	}
	if h != rec.Objects {
		return nil, fmt.Errorf("%w: the configuration (devenv.yaml, its templates or the values it reads) changed since the last devenv up", ErrNotCurrent)
	}
	c, err := connectCluster(ctx, cfg, opts)
	if err == nil {
		err = c.Ping(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCurrent, err)
	}
	env.Cluster = c
	for _, s := range cfg.Services {
		st, found, err := c.DeploymentStatus(ctx, cfg.Namespace, s.Name)
		switch {
		case err != nil:
			return nil, err
		case !found:
			return nil, fmt.Errorf("%w: service %s has no Deployment", ErrNotCurrent, s.Name)
		case !st.Ready:
			return nil, fmt.Errorf("%w: service %s is not ready (%d of %d pods)", ErrNotCurrent, s.Name, st.ReadyPods, st.Desired)
		}
	}
	for n, ref := range rec.Images {
		env.Images[n] = ref
	}
	ok = true
	return env, nil
}
