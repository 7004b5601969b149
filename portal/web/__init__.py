"""HTTP layer: public pages, staff pages, the Open311 API and the middleware they share."""
