package awsemu

// STS GetCallerIdentity (query protocol, SigV4 scoped to "sts"): who the
// account's user is, as `--ephemeral` tags its instances with the owner.

import (
	"encoding/xml"
	"net/http"
	"net/url"
)

// The account's user, the caller with the lab's keys, and the role of its
// instance profile. A unique id is as IAM makes them: a four-letter prefix
// (AIDA an IAM user, AROA a role) and 17 upper-case letters and digits; an
// assumed role's caller id is ROLEID:SESSION, the session of an instance's
// role being the instance id.
const (
	userARN = "arn:aws:iam::" + accountID + ":user/lab"
	userID  = "AIDA" + "EMULATEDLABUSER01"
	roleID  = "AROA" + "EMULATEDLABSSM001"
)

type callerIdentityResponse struct {
	XMLName   xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Arn       string   `xml:"GetCallerIdentityResult>Arn"`
	UserID    string   `xml:"GetCallerIdentityResult>UserId"`
	Account   string   `xml:"GetCallerIdentityResult>Account"`
	RequestID string   `xml:"ResponseMetadata>RequestId"`
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// serveSTS answers an STS call whose body was read; r's signature is not
// checked yet.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	if err := s.verify(r, body, "sts"); err != nil {
		ae := err.(*authError)
		s.log.Info("call rejected", "target", "STS", "error", ae.Type)
		writeXML(w, ae.Status, stsErrorResponse{Type: "Sender", Code: ae.Type, Message: ae.Msg, RequestID: newUUID().String()})
		return
	}
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	s.logCall("STS."+action, s.caller(r), nil)
	if action != "GetCallerIdentity" {
		writeXML(w, http.StatusBadRequest, stsErrorResponse{Type: "Sender", Code: "InvalidAction",
			Message: "Could not find operation " + action + " for version " + form.Get("Version"), RequestID: newUUID().String()})
		return
	}
	arn, id := userARN, userID
	if in := s.signer(r).Instance; in != "" {
		arn, id = "arn:aws:sts::"+accountID+":assumed-role/lab-ssm/"+in, roleID+":"+in
	}
	writeXML(w, http.StatusOK, callerIdentityResponse{Xmlns: "https://sts.amazonaws.com/doc/2011-06-15/", Arn: arn, UserID: id,
		Account: accountID, RequestID: newUUID().String()})
}
