package bench

import "fmt"

// appendPreamble appends the preamble for key index i to dst.
//
// Until package frame lands on main only the line frame is written here
// ("<key>\n"); checkFrame makes Verify refuse the others rather than send
// a wrong preamble. Both go when frame's encoders replace them.
func (w *worker) appendPreamble(dst []byte, i int) []byte {
	return append(appendKey(dst, i), '\n')
}

// checkFrame reports a frame this build cannot write.
func checkFrame(f Frame) error {
	if f != FrameLine {
		return fmt.Errorf("%w: frame %v needs package frame, not in this build yet", ErrInvalidConfig, f)
	}
	return nil
}
