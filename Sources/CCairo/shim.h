/* CCairo: cairo (Debian libcairo2-dev) for Facet's PDF reports: the image surface, the PDF surface written to a
 * stream, text through fontconfig's fonts. */
#include <cairo/cairo.h>
#include <cairo/cairo-pdf.h>
