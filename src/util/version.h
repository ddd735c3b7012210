/* crstream's version: printed by --version, recorded in every manifest. */
#ifndef CRSTREAM_UTIL_VERSION_H
#define CRSTREAM_UTIL_VERSION_H

#define CRSTREAM_VERSION "0.2.0"

#endif
