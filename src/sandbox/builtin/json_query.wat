;; json_query: {"json": <any>, "path": "a.b.0"} -> {"found": true, "value": <the value>} or
;; {"found": false}. Path segments are object keys (compared as written in the JSON, so keys
;; with escapes or dots cannot be named) or array indexes; an empty path is the whole value.
(module
;;@prelude
  (data (i32.const 3100) "json")
  (data (i32.const 3110) "path")
  (data (i32.const 3200) "{\"found\":true,\"value\":")
  (data (i32.const 3232) "{\"found\":false}")
  ;; The element $n of the array at $arr, or -1.
  (func $index (param $arr i32) (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (call $ws (i32.add (local.get $arr) (i32.const 1))))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 93)) (then (return (i32.const -1))))
    (loop $element
      (if (i32.eqz (local.get $n)) (then (return (local.get $p))))
      (local.set $p (call $ws (call $skip (local.get $p))))
      (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 44)) (then (return (i32.const -1))))
      (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $element))
    (i32.const -1))
  ;; A decimal segment [$s, $e) as a number, or -1 when it is not all digits.
  (func $number (param $s i32) (param $e i32) (result i32)
    (local $n i32) (local $c i32)
    (if (i32.ge_u (local.get $s) (local.get $e)) (then (return (i32.const -1))))
    (block $done
      (loop $digit
        (br_if $done (i32.ge_u (local.get $s) (local.get $e)))
        (local.set $c (i32.sub (i32.load8_u (local.get $s)) (i32.const 48)))
        (if (i32.gt_u (local.get $c) (i32.const 9)) (then (return (i32.const -1))))
        (if (i32.gt_u (local.get $n) (i32.const 100000000)) (then (return (i32.const -1))))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $c)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $digit)))
    (local.get $n))
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $cur i32) (local $path i32) (local $s i32) (local $e i32) (local $end i32)
    (local $c i32) (local $n i32)
    (local.set $cur (call $find_key (local.get $ptr) (i32.const 3100) (i32.const 4)))
    (local.set $path (call $find_key (local.get $ptr) (i32.const 3110) (i32.const 4)))
    (if (i32.or (i32.lt_s (local.get $cur) (i32.const 0)) (i32.lt_s (local.get $path) (i32.const 0)))
      (then unreachable))
    (local.set $s (i32.add (local.get $path) (i32.const 1)))
    (local.set $end (call $string_end (local.get $s)))
    (block $missing
      (block $walked
        (loop $segment
          (br_if $walked (i32.ge_u (local.get $s) (local.get $end)))
          (local.set $e (local.get $s))
          (block $cut
            (loop $find_dot
              (br_if $cut (i32.ge_u (local.get $e) (local.get $end)))
              (br_if $cut (i32.eq (i32.load8_u (local.get $e)) (i32.const 46)))
              (local.set $e (i32.add (local.get $e) (i32.const 1)))
              (br $find_dot)))
          (local.set $c (i32.load8_u (local.get $cur)))
          (if (i32.eq (local.get $c) (i32.const 123))
            (then (local.set $cur (call $find_key (local.get $cur) (local.get $s) (i32.sub (local.get $e) (local.get $s)))))
            (else
              (if (i32.eq (local.get $c) (i32.const 91))
                (then
                  (local.set $n (call $number (local.get $s) (local.get $e)))
                  (br_if $missing (i32.lt_s (local.get $n) (i32.const 0)))
                  (local.set $cur (call $index (local.get $cur) (local.get $n))))
                (else (br $missing)))))
          (br_if $missing (i32.lt_s (local.get $cur) (i32.const 0)))
          (local.set $s (i32.add (local.get $e) (i32.const 1)))
          (br $segment)))
      (call $out_begin (i32.add (local.get $len) (i32.const 64)))
      (call $bytes (i32.const 3200) (i32.const 22))
      (call $bytes (local.get $cur) (i32.sub (call $skip (local.get $cur)) (local.get $cur)))
      (call $byte (i32.const 125))
      (return (call $result)))
    (call $out_begin (i32.const 32))
    (call $bytes (i32.const 3232) (i32.const 15))
    (call $result)))
