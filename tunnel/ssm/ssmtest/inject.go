package ssmtest

import "github.com/coder/websocket"

// Inject sends frame to the client as it is, in a binary WebSocket
// message (a text one if text is set), between the session's own
// messages: what a broken or hostile peer would send. It is neither
// sequenced nor kept for resending.
func (st *Stream) Inject(frame []byte, text bool) {
	typ := websocket.MessageBinary
	if text {
		typ = websocket.MessageText
	}
	s := st.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ws.Write(s.ctx, typ, frame)
}
