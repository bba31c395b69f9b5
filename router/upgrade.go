package router

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// upgrade relays a 101 Switching Protocols (WebSocket and others): the client connection
// is hijacked and bytes flow both ways until either side closes. The dyno stays busy for
// the life of the connection, which is closed at the end; then l settles as ended.
func (r *Router) upgrade(w http.ResponseWriter, l lease, dc *dynoConn, bw *bodyWriter,
	ob *outbound, resp *http.Response, rec *record) {
	defer l.settle(ended)
	if bw != nil {
		bw.stop(w, dc)
	}
	if ob.upgrade == "" {
		dc.close()
		rec.desc = "Dyno switched protocols unasked"
		r.fail(w, rec, H17)
		return
	}
	cc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		dc.close()
		r.log.Error("failed to take over a client connection for an upgrade", "error", err)
		r.fail(w, rec, H13)
		return
	}
	rec.status = http.StatusSwitchingProtocols
	_ = dc.c.SetDeadline(time.Time{}) // the client side: Hijack cleared its deadlines
	if !r.track(cc) {
		cc.Close()
		dc.close()
		return
	}
	defer r.untrack(cc)

	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = resp.Header.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		cc.Close()
		dc.close()
		rec.code = H27
		return
	}
	var wg sync.WaitGroup
	var once sync.Once
	closeBoth := func() { once.Do(func() { cc.Close(); dc.close() }) }
	var up, down int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		up, _ = io.Copy(dc.c, brw.Reader)
		closeWrite(dc.c)
	}()
	go func() {
		defer wg.Done()
		down, _ = io.Copy(cc, dc.br)
		closeBoth()
	}()
	wg.Wait()
	closeBoth()
	rec.bytes = down
	_ = up
}

// closeWrite half-closes a TCP connection so the peer sees the end of the stream.
func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		return
	}
	c.Close()
}
