package awsemu

// AmazonSSM.GetParameter for the public parameters that name the current
// Amazon Linux 2023 images, as `--ephemeral` reads them before
// RunInstances; the images they name are the ones RunInstances knows.

import (
	"time"
)

// Public parameters of the current Amazon Linux 2023 images.
const (
	AL2023ARM64Param = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
	AL2023X86Param   = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
)

// image is an AMI RunInstances launches.
type image struct {
	id, arch   string
	httpTokens string // IMDS default: AL2023 images are marked imds-support v2.0
}

var images = map[string]image{
	AL2023ARM64Param: {"ami-" + shortHash(AL2023ARM64Param), "arm64", "required"},
	AL2023X86Param:   {"ami-" + shortHash(AL2023X86Param), "x86_64", "required"},
}

// AL2023ARM64Image is the image id AL2023ARM64Param names.
var AL2023ARM64Image = images[AL2023ARM64Param].id

func imageByID(id string) (image, bool) {
	for _, img := range images {
		if img.id == id {
			return img, true
		}
	}
	return image{}, false
}

type parameterJSON struct {
	Name             string
	Type             string
	Value            string
	Version          int
	LastModifiedDate float64
	ARN              string
	DataType         string
}

func (s *Server) getParameter(body []byte) (any, error) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if s.ec2.isDenied("ssm:GetParameter") {
		return nil, &apiError{403, "AccessDeniedException", "User: " + userARN + " is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:" + s.cfg.Region + "::parameter" + in.Name + " because no identity-based policy allows the ssm:GetParameter action"}
	}
	img, ok := images[in.Name]
	if !ok {
		return nil, &apiError{400, "ParameterNotFound", ""}
	}
	modified := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	return map[string]parameterJSON{"Parameter": {
		Name: in.Name, Type: "String", Value: img.id, Version: 97, LastModifiedDate: float64(modified.Unix()),
		ARN: "arn:aws:ssm:" + s.cfg.Region + "::parameter" + in.Name, DataType: "text",
	}}, nil
}
