// Package providerid checks the syntax of provider ids, the one rule that
// the registry applies to a manifest's id and the store to a
// configuration's providerID.
//
// A provider id is reverse-DNS-like: two or more dot-separated labels of
// letters, digits and '-', each 1 to 63 long and not starting or ending
// with '-', at most 255 in all, such as org.example.wireguard.
package providerid
