/* Links proto/openapi.json into the binary as slp__openapi_start .. slp__openapi_end. */
    .section .rodata
    .global slp__openapi_start
    .global slp__openapi_end
slp__openapi_start:
    .incbin "proto/openapi.json"
slp__openapi_end:
    .byte 0
    .section .note.GNU-stack,"",@progbits
