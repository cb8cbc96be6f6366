package ui

import (
	"strconv"
	"time"
)

// Snapshot is everything the page shows, as JSON: what the page gets
// first, and again after each change (Logs only in the first).
type Snapshot struct {
	Project   string    `json:"project"`
	Namespace string    `json:"namespace"`
	Ready     bool      `json:"ready"`   // every part and service is ready
	Checked   time.Time `json:"checked"` // when the status was last checked; zero before the first check
	Parts     []Part    `json:"parts"`
	Services  []Service `json:"services"`
	Saves     []Save    `json:"saves"` // oldest first, the last MaxSaves
	Tests     []Test    `json:"tests"` // the declared tests' last results, by name
	// Kafka is true when the environment has a broker: the page then asks
	// for its topics.
	Kafka bool                `json:"kafka"`
	Logs  map[string][]string `json:"logs,omitempty"` // each service's recent log lines
}

// Status is what the conductor checks every few seconds.
type Status struct {
	Project   string
	Namespace string
	Ready     bool
	Parts     []Part
	Services  []Service // LastUpdate is kept by the Hub from Applied
	Kafka     bool
}

// Part is the cluster or an external container (Kafka, H2).
type Part struct {
	Kind    string `json:"kind"` // "cluster", "kafka", "h2"
	Name    string `json:"name"` // the cluster's or container's name
	Ready   bool   `json:"ready"`
	Image   string `json:"image,omitempty"`
	IP      string `json:"ip,omitempty"`      // on the kind network
	Host    string `json:"host,omitempty"`    // 127.0.0.1:<port>, for host tools
	Address string `json:"address,omitempty"` // in the cluster: <service>:<port>, or the kube context
	Message string `json:"message,omitempty"` // why it is not ready
}

// Service is one service of devenv.yaml.
type Service struct {
	Name      string   `json:"name"`
	Ready     bool     `json:"ready"`
	ReadyPods int32    `json:"readyPods"`
	Desired   int32    `json:"desired"`
	Image     string   `json:"image,omitempty"`
	Address   string   `json:"address,omitempty"`  // in the cluster
	Forwards  []string `json:"forwards,omitempty"` // 127.0.0.1:<port> while up watches
	Secrets   []string `json:"secrets,omitempty"`  // names only, never values
	Message   string   `json:"message,omitempty"`
	// LastUpdate is how the service was last brought up to date.
	LastUpdate *Update `json:"lastUpdate,omitempty"`
}

// How a service was updated (Update.How).
const (
	HowUp      = "up"      // by devenv up, before watching
	HowLive    = "live"    // its new files written into the running containers
	HowSwap    = "swap"    // the new image swapped into the running pods
	HowRollout = "rollout" // a new rollout of its Deployment
	HowConfig  = "config"  // devenv.yaml changed: everything applied again
	HowBuild   = "build"   // the build failed: the running version stays
)

// Update is one update of a service.
type Update struct {
	Service  string    `json:"service"`
	How      string    `json:"how"`
	Image    string    `json:"image,omitempty"`
	At       time.Time `json:"at"`       // when it ended
	Duration Millis    `json:"duration"` // from the start of the save's work on it
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
}

// Save is one run of work: devenv up, or one batch of saved changes.
type Save struct {
	ID       int       `json:"id"`
	Trigger  string    `json:"trigger"` // "up", "save", "config"
	Services []string  `json:"services"`
	Start    time.Time `json:"start"`
	Duration Millis    `json:"duration"` // 0 while it runs
	Running  bool      `json:"running"`
	OK       bool      `json:"ok"` // no step failed
	Steps    []Step    `json:"steps"`
}

// Step is one step of a Save (a prebuild, an image build, a load, a live
// update, a swap, an apply, a rollout …), as devenv's terminal lines name it.
type Step struct {
	Name     string `json:"name"`
	Offset   Millis `json:"offset"` // from the Save's start
	Duration Millis `json:"duration"`
	OK       bool   `json:"ok"`
	Stopped  bool   `json:"stopped,omitempty"` // ended by Ctrl-C
}

// Test is a declared test's last result.
type Test struct {
	Name     string    `json:"name"`
	Status   string    `json:"status"` // passed, failed, timed out, error
	At       time.Time `json:"at"`
	Duration Millis    `json:"duration"`
	Error    string    `json:"error,omitempty"`
}

// Topic is a Kafka topic and the end offsets of its partitions.
type Topic struct {
	Name       string  `json:"name"`
	EndOffsets []int64 `json:"endOffsets"` // by partition; -1 when the broker gave none
}

// Record is one record of a topic's live tail; Key and Value are text,
// cut to MaxValue bytes.
type Record struct {
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Time      time.Time `json:"time"`
	Key       string    `json:"key,omitempty"`
	Value     string    `json:"value"`
	Cut       bool      `json:"cut,omitempty"` // Value was longer
}

// Millis is a duration that is a number of milliseconds in JSON.
type Millis time.Duration

// MarshalJSON writes the duration in whole milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, time.Duration(m).Milliseconds(), 10), nil
}
