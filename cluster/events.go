package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event is one Kubernetes event of a namespace, as a person reads it to see
// why something failed.
type Event struct {
	// Time is when the event last happened: its last timestamp, else its
	// event time, else its first timestamp, else when it was recorded.
	Time    time.Time
	Type    string // Normal or Warning
	Reason  string // e.g. BackOff, FailedScheduling
	Object  string // the object it is about, as kind/name (e.g. Pod/account-5d9c7-x2x4z)
	Message string
	Count   int32 // how many times it happened (at least 1)
}

// Events lists the events of namespace, oldest first (events at the same
// time in the order object, reason).
func (c *Cluster) Events(ctx context.Context, namespace string) ([]Event, error) {
	list, err := c.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the events of namespace %s: %w", namespace, err)
	}
	out := make([]Event, 0, len(list.Items))
	for _, e := range list.Items {
		out = append(out, Event{
			Time:    eventTime(e),
			Type:    e.Type,
			Reason:  e.Reason,
			Object:  e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name,
			Message: e.Message,
			Count:   max(e.Count, 1),
		})
	}
	slices.SortStableFunc(out, func(a, b Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Reason, b.Reason))
	})
	return out, nil
}

// eventTime is when e last happened (see Event.Time).
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
