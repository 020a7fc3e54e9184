package refresher

import (
	"fmt"
	"strings"
)

// Token endpoints of the Zoho Accounts data centres, for NewHTTPEndpoint. A
// Zoho user exists in one data centre only: a token sent to another one is
// answered with invalid_client. The location parameter of Zoho's
// authorization redirect names the user's data centre; ZohoTokenURL maps
// it to one of these.
const (
	ZohoUS = "https://accounts.zoho.com/oauth/v2/token"     // United States
	ZohoEU = "https://accounts.zoho.eu/oauth/v2/token"      // Europe
	ZohoIN = "https://accounts.zoho.in/oauth/v2/token"      // India
	ZohoAU = "https://accounts.zoho.com.au/oauth/v2/token"  // Australia
	ZohoCN = "https://accounts.zoho.com.cn/oauth/v2/token"  // China
	ZohoJP = "https://accounts.zoho.jp/oauth/v2/token"      // Japan
	ZohoCA = "https://accounts.zohocloud.ca/oauth/v2/token" // Canada
	ZohoSA = "https://accounts.zoho.sa/oauth/v2/token"      // Saudi Arabia
	ZohoUK = "https://accounts.zoho.uk/oauth/v2/token"      // United Kingdom
)

// zohoDataCentres maps ZohoTokenURL's names to the token URLs; zohoNames
// lists the names in the order error messages give them.
var (
	zohoDataCentres = map[string]string{
		"us": ZohoUS, "eu": ZohoEU, "in": ZohoIN, "au": ZohoAU, "cn": ZohoCN,
		"jp": ZohoJP, "ca": ZohoCA, "sa": ZohoSA, "uk": ZohoUK,
	}
	zohoNames = "us, eu, in, au, cn, jp, ca, sa, uk"
)

// ZohoTokenURL returns the token URL of the Zoho data centre named
// dataCentre: "us", "eu", "in", "au", "cn", "jp", "ca", "sa" or "uk", in any
// case and with surrounding spaces ignored. Any other name is an error that
// lists the valid ones.
func ZohoTokenURL(dataCentre string) (string, error) {
	if u, ok := zohoDataCentres[strings.ToLower(strings.TrimSpace(dataCentre))]; ok {
		return u, nil
	}
	return "", fmt.Errorf("refresher: unknown Zoho data centre %q: use one of %s", dataCentre, zohoNames)
}
