package platform

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The layout and numbers of rtmsg.go are darwin's. Each line below fails to
// compile, when the package is built for macOS (make crossbuild does), if
// the darwin types and constants x/sys/unix generates from the system
// headers say otherwise: an index other than 0 into [1]struct{} is out of
// bounds, a negative one invalid.
var (
	_ = [1]struct{}{}[unsafe.Sizeof(unix.RtMsghdr{})-rtMsghdrLen]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Index)-4]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Flags)-8]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Addrs)-12]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Pid)-16]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Seq)-20]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Errno)-24]
	_ = [1]struct{}{}[unsafe.Sizeof(unix.RawSockaddrInet4{})-sockaddrInLen]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RawSockaddrInet4{}.Addr)-4]
	_ = [1]struct{}{}[unsafe.Sizeof(unix.RawSockaddrDatalink{})-sockaddrDlLen]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RawSockaddrDatalink{}.Index)-2]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RawSockaddrDatalink{}.Nlen)-5]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RawSockaddrDatalink{}.Data)-8]

	_ = [1]struct{}{}[unix.RTM_VERSION-rtmVersion]
	_ = [1]struct{}{}[unix.RTM_ADD-rtmAdd]
	_ = [1]struct{}{}[unix.RTM_NEWADDR-rtmNewAddr]
	_ = [1]struct{}{}[unix.RTM_DELADDR-rtmDelAddr]
	_ = [1]struct{}{}[unix.RTM_IFINFO-rtmIfInfo]
	_ = [1]struct{}{}[unix.RTM_DELETE-rtmDelete]
	_ = [1]struct{}{}[unix.RTM_GET-rtmGet]
	_ = [1]struct{}{}[unix.RTM_RESOLVE-rtmLast]
	_ = [1]struct{}{}[unix.RTAX_DST-rtaxDst]
	_ = [1]struct{}{}[unix.RTAX_GATEWAY-rtaxGateway]
	_ = [1]struct{}{}[unix.RTAX_NETMASK-rtaxNetmask]
	_ = [1]struct{}{}[unix.RTAX_IFP-rtaxIFP]
	_ = [1]struct{}{}[unix.RTAX_IFA-rtaxIFA]
	_ = [1]struct{}{}[unix.RTAX_MAX-rtaxMax]
	_ = [1]struct{}{}[unix.RTF_UP-rtfUp]
	_ = [1]struct{}{}[unix.RTF_GATEWAY-rtfGateway]
	_ = [1]struct{}{}[unix.RTF_HOST-rtfHost]
	_ = [1]struct{}{}[unix.RTF_REJECT-rtfReject]
	_ = [1]struct{}{}[unix.RTF_STATIC-rtfStatic]
	_ = [1]struct{}{}[unix.RTF_BLACKHOLE-rtfBlackhole]
	_ = [1]struct{}{}[unix.RTF_IFSCOPE-rtfIFScope]
	_ = [1]struct{}{}[unix.AF_INET-afInet]
	_ = [1]struct{}{}[unix.AF_LINK-afLink]
	_ = [1]struct{}{}[unix.AF_INET6-afInet6]

	_ = [1]struct{}{}[unix.EPERM-errnoEPERM]
	_ = [1]struct{}{}[unix.ESRCH-errnoESRCH]
	_ = [1]struct{}{}[unix.EACCES-errnoEACCES]
	_ = [1]struct{}{}[unix.EBUSY-errnoEBUSY]
	_ = [1]struct{}{}[unix.EEXIST-errnoEEXIST]
	_ = [1]struct{}{}[unix.ENETUNREACH-errnoENETUNREACH]
	_ = [1]struct{}{}[unix.EHOSTUNREACH-errnoEHOSTUNREACH]
)
