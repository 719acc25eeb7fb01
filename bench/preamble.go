package bench

// appendPreamble appends the preamble for key index i to dst.
// TEMPORARY until frame/ lands: line frame only.
func (w *worker) appendPreamble(dst []byte, i int) []byte {
	return append(appendKey(dst, i), '\n')
}
