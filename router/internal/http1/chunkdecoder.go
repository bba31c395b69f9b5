package http1

import (
	"bytes"
	"io"
	"net/http"
)

// ChunkDecoder decodes a chunked body (RFC 9112 7.1) from bytes as they arrive, for a
// caller that reads a connection into buffers of its own (an event loop): it keeps to
// the rules, limits and errors of a body read through a bufio.Reader by newBodyReader
// (chunkedReader, then readTrailer), the reader's size included, which bounds each line.
// A body the one reads whole, the other reads the same, and ends at the same byte. Its
// zero value is not ready: NewChunkDecoder or Reset.
type ChunkDecoder struct {
	state      decodeState
	n          uint64 // data left of the current chunk
	lines      chunkLines
	maxTrailer int
	maxLine    int
	trailer    []byte // the trailer section's lines so far
	fields     http.Header
	err        error
}

type decodeState uint8

const (
	wantLine    decodeState = iota // a chunk line
	wantData                       // the rest of a chunk's data
	wantCRLF                       // the CRLF after a chunk's data
	wantTrailer                    // a trailer line, or the blank line that ends them
	decoded                        // the body is over
)

// NewChunkDecoder returns a decoder for a chunked body whose trailer section takes at
// most maxTrailer bytes, with lines bounded as the server bounds a client's (Reset).
func NewChunkDecoder(maxTrailer int) *ChunkDecoder {
	d := new(ChunkDecoder)
	d.Reset(maxTrailer, 0)
	return d
}

// Reset readies d for a new body whose trailer section takes at most maxTrailer bytes.
// maxLine bounds each chunk line and trailer line, its LF included, as a bufio.Reader of
// that size bounds them (ReadSlice): 0 for the server's reader, a client's body; the
// size of the reader a dyno's response would be read through otherwise. Nothing of the
// body before is kept but a small trailer buffer, for reuse.
func (d *ChunkDecoder) Reset(maxTrailer, maxLine int) {
	if maxLine <= 0 {
		maxLine = readerSize
	}
	trailer := d.trailer[:0]
	if cap(trailer) > 4096 {
		trailer = nil // a large one is not kept for the life of a connection
	}
	*d = ChunkDecoder{maxTrailer: maxTrailer, maxLine: maxLine, trailer: trailer}
}

// Decode decodes from the start of in, the input from where the last call's consumed
// bytes ended: it consumes chunk framing and returns the next run of body data as soon
// as any of it is in, a part of in (consumed counts framing and data). The caller calls
// it again on the rest. Nothing consumed, no data and no error mean that in holds too
// little to go on (part of a chunk line, of the CRLF after a chunk's data or of a
// trailer line): the caller appends the bytes it reads next and calls again on all it
// holds unconsumed. d keeps none of in but trailer lines, copied; a line in part stays
// the caller's, and fails once longer than the line bound. When the trailer section has
// ended, Done says so, and what follows in is the next message's; a later Decode returns
// io.EOF. Input that ends before that is a body cut short (io.ErrUnexpectedEOF, as
// newBodyReader says). Errors are the body reader's, and final.
func (d *ChunkDecoder) Decode(in []byte) (consumed int, data []byte, err error) {
	if d.err != nil {
		return 0, nil, d.err
	}
	for {
		rest := in[consumed:]
		switch d.state {
		case wantLine:
			line, err := d.line(rest, errChunkLineTooLong)
			if line == nil {
				return consumed, nil, d.fail(err)
			}
			consumed += len(line)
			switch d.n, err = d.lines.next(line); err {
			case nil:
				d.state = wantData
			case io.EOF:
				d.state = wantTrailer
			default:
				return consumed, nil, d.fail(err)
			}
		case wantData:
			if len(rest) == 0 {
				return consumed, nil, nil
			}
			k := len(rest)
			if uint64(k) >= d.n {
				k, d.state = int(d.n), wantCRLF
			}
			d.n -= uint64(k)
			return consumed + k, rest[:k], nil
		case wantCRLF:
			if len(rest) < 2 {
				return consumed, nil, nil
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				return consumed, nil, d.fail(errChunkEnd)
			}
			consumed += 2
			d.state = wantLine
		case wantTrailer:
			line, err := d.line(rest, errBadTrailer)
			if line == nil {
				return consumed, nil, d.fail(err)
			}
			consumed += len(line)
			end, err := trailerLine(len(d.trailer), line, d.maxTrailer)
			if err != nil {
				return consumed, nil, d.fail(err)
			}
			if !end {
				d.trailer = append(d.trailer, line...)
				continue
			}
			if d.fields, err = parseTrailer(d.trailer); err != nil {
				return consumed, nil, d.fail(err)
			}
			d.state = decoded
			return consumed, nil, nil
		default:
			return consumed, nil, io.EOF
		}
	}
}

// line returns the line at the start of in, through its first LF, or nil when in holds
// none yet. A line not ended within the line bound fails with tooLong, as a bufio.Reader
// of that size fails to hold it.
func (d *ChunkDecoder) line(in []byte, tooLong error) ([]byte, error) {
	s := in
	if len(s) > d.maxLine {
		s = s[:d.maxLine]
	}
	if i := bytes.IndexByte(s, '\n'); i >= 0 {
		return in[:i+1], nil
	}
	if len(in) >= d.maxLine {
		return nil, tooLong
	}
	return nil, nil
}

// fail makes err, when not nil, the decoder's last word.
func (d *ChunkDecoder) fail(err error) error {
	d.err = err
	return err
}

// Done says the body is over: its last chunk and trailer section are consumed.
func (d *ChunkDecoder) Done() bool { return d.state == decoded }

// Trailer returns the fields of the body's trailer section once Done, parsed and
// checked as readTrailer does them: nil when there were none.
func (d *ChunkDecoder) Trailer() http.Header { return d.fields }
