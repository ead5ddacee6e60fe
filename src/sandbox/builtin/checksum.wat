;; checksum: {"text": "..."} -> {"sha256": "<hex>", "bytes": n} of the decoded text's UTF-8.
(module
;;@prelude
;;@sha256
  (data (i32.const 3100) "text")
  (data (i32.const 3200) "{\"sha256\":\"")
  (data (i32.const 3216) "\",\"bytes\":")
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (call $read_text (local.get $ptr) (i32.const 3100) (i32.const 4))
    (call $sha256 (global.get $text) (global.get $text_len))
    (call $out_begin (i32.const 128))
    (call $bytes (i32.const 3200) (i32.const 11))
    (call $hex (global.get $out))
    (global.set $out (i32.add (global.get $out) (i32.const 64)))
    (call $bytes (i32.const 3216) (i32.const 10))
    (call $u32 (global.get $text_len))
    (call $byte (i32.const 125))
    (call $result)))
