# The Node addon: node_addon/*.cc over the same src_c/ sources as the C library (CMakeLists.txt),
# built by node-gyp. The C sources become a static library so that -Wl,--exclude-libs,ALL keeps
# the library's symbols inside the addon, and node_addon/exports.map leaves the .node exporting only
# its Node-API entry points.
# System libraries are linked as shared ones (Debian's static archives are not PIC).
{
  "variables": {
    "dds_pkgs": "libevent_core libevent_extra libevent_pthreads libcurl libzstd zlib"
  },
  "targets": [
    {
      "target_name": "dds_core",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./node_addon/build.js').cSources().join(' ')\")"],
      "include_dirs": ["src_c", "src_c/include"],
      "defines": [
        "_GNU_SOURCE",
        "DDS_VERSION_STRING=\"<!(node -p \"require('./package.json').version\")\""
      ],
      "cflags": ["-fvisibility=hidden", "-Wshadow", "<!@(pkg-config --cflags <(dds_pkgs))"],
      "cflags_c": ["-std=c11", "-Wstrict-prototypes"]
    },
    {
      "target_name": "datadog_serverless",
      "sources": ["node_addon/addon.cc", "node_addon/config.cc", "node_addon/log.cc", "node_addon/services.cc"],
      "dependencies": [
        "dds_core",
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "include_dirs": ["src_c/include"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-fvisibility=hidden"],
      "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,--version-script=<(module_root_dir)/node_addon/exports.map"],
      "libraries": ["<!@(pkg-config --libs <(dds_pkgs))", "-lpthread", "-lm"]
    }
  ]
}
