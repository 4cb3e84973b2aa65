# Parsing an XML document with the libxml2 that lxml is built with, in a native region of
# the calling module (with its hand-over marks, see _handover.pxd).
#
# lxml's parse releases the GIL around libxml2 and takes it back in a callback at the
# document's start and again at the end: in two threads, a reader whose read holds the
# GIL for most of its time (a small document) hands the GIL over at each of these and
# sleeps through the other reader's GIL-held stretch, and the other reader waits for it
# in turn. Parsed here, a document costs one native region whose ends hand the GIL over
# as the module's other regions do. libxml2's functions are bound from lxml's module
# (ecg_xml_bind, with their addresses): the tree is the same libxml2's, so lxml can adopt
# it and a kernel can walk it. Options are those of the hardened parser of
# formats/_xml.py: no entity substitution, no network, no DTD loading, libxml2's depth
# and size bounds; comments, processing instructions and blank text left out, CDATA read
# as text, as lxml's parser there does. The caller leaves documents with a DOCTYPE (entity
# checks) and those in encodings other than ASCII-compatible ones to lxml.
cdef extern from *:
    """
    #include <pthread.h>
    #include <stddef.h>
    #include <stdlib.h>
    typedef void* (*ecg_xml_new_context_f)(void);
    typedef void (*ecg_xml_free_context_f)(void* context);
    typedef void* (*ecg_xml_read_memory_f)(void* context, const char* text, int size,
                                           const char* url, const char* encoding, int options);
    typedef void (*ecg_xml_free_document_f)(void* document);
    static ecg_xml_new_context_f ecg_xml_new_context;
    static ecg_xml_free_context_f ecg_xml_free_context;
    static ecg_xml_read_memory_f ecg_xml_read_memory;
    static ecg_xml_free_document_f ecg_xml_free_document;
    /* XML_PARSE_NOBLANKS | NONET | NOCDATA | COMPACT | BIG_LINES | NOERROR | NOWARNING */
    #define ECG_XML_OPTIONS (256 | 2048 | 16384 | 65536 | 4194304 | 32 | 64)
    /* positions in libxml2's xmlSAXHandler (parser.h, unchanged across 2.x) */
    #define ECG_SAX_PROCESSING_INSTRUCTION 19
    #define ECG_SAX_COMMENT 20
    #define ECG_SAX_CDATA_BLOCK 25

    static int ecg_xml_bind(size_t new_context, size_t free_context, size_t read_memory,
                            size_t free_document) {
        if (!new_context || !free_context || !read_memory || !free_document) return 0;
        ecg_xml_new_context = (ecg_xml_new_context_f)new_context;
        ecg_xml_free_context = (ecg_xml_free_context_f)free_context;
        ecg_xml_free_document = (ecg_xml_free_document_f)free_document;
        ecg_xml_read_memory = (ecg_xml_read_memory_f)read_memory;
        return 1;
    }

    static int ecg_xml_bound(void) { return ecg_xml_read_memory != NULL; }

    /* This thread's parser context, made once and freed when the thread ends: a parse
       reuses its buffers and its dictionary of names, as lxml's parser does. */
    static pthread_key_t ecg_xml_context_key;
    static pthread_once_t ecg_xml_context_once = PTHREAD_ONCE_INIT;
    static int ecg_xml_context_keyed;

    static void ecg_xml_context_free(void* context) {
        if (context != NULL) ecg_xml_free_context(context);
    }

    static void ecg_xml_context_make_key(void) {
        ecg_xml_context_keyed =
            pthread_key_create(&ecg_xml_context_key, ecg_xml_context_free) == 0;
    }

    static void* ecg_xml_context(void) {
        void* context;
        void** sax;
        pthread_once(&ecg_xml_context_once, ecg_xml_context_make_key);
        if (!ecg_xml_context_keyed) return NULL;
        context = pthread_getspecific(ecg_xml_context_key);
        if (context != NULL) return context;
        context = ecg_xml_new_context();
        if (context == NULL) return NULL;
        sax = *(void***)context;  /* an xmlParserCtxt starts with its SAX handler */
        if (sax == NULL || pthread_setspecific(ecg_xml_context_key, context) != 0) {
            ecg_xml_free_context(context);
            return NULL;
        }
        sax[ECG_SAX_PROCESSING_INSTRUCTION] = NULL;  /* kept by every later parse */
        sax[ECG_SAX_COMMENT] = NULL;
        sax[ECG_SAX_CDATA_BLOCK] = NULL;
        return context;
    }

    /* The document (an xmlDoc*), or NULL: not well-formed, beyond the bounds, no memory. */
    static void* ecg_xml_parse(const char* text, int size, int utf8) {
        void* context = ecg_xml_context();
        if (context == NULL) return NULL;
        return ecg_xml_read_memory(context, text, size, NULL, utf8 ? "UTF-8" : NULL,
                                   ECG_XML_OPTIONS);
    }

    static void ecg_xml_free_doc(void* document) { ecg_xml_free_document(document); }

    /* libxml2 frees a tree's many small nodes into the allocator's fast bins, which
       glibc merges all at once on the next free or request of a large block (tens of
       microseconds for a large tree), with the GIL when that block is a numpy array's:
       a request of a large block right after the free merges them in the native region
       instead. */
    static void ecg_xml_free_doc_merged(void* document) {
        void* volatile block;
        ecg_xml_free_document(document);
        block = malloc(4096);  /* beyond glibc's small bins: merges the fast bins first */
        free(block);
    }
    """
    bint xml_bind "ecg_xml_bind"(size_t new_context, size_t free_context, size_t read_memory,
                                 size_t free_document) noexcept
    bint xml_bound "ecg_xml_bound"() noexcept nogil
    void* xml_parse "ecg_xml_parse"(const char* text, int size, bint utf8) noexcept nogil
    void xml_free_doc "ecg_xml_free_doc"(void* document) noexcept nogil
    void xml_free_doc_merged "ecg_xml_free_doc_merged"(void* document) noexcept nogil
