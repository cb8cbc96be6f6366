package render

import "errors"

// joinErrors joins errs, or returns the only one unchanged.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
