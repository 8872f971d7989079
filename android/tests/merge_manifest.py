"""Merges the app's manifest with the library's, as the Android Gradle Plugin would for what the
tests need: the package (the app's namespace), the SDK levels from the version catalog, and the
library's permissions. Usage: merge_manifest.py APP LIBRARY CATALOG > merged.xml"""
import re
import sys
import xml.etree.ElementTree as ET

ANDROID = "http://schemas.android.com/apk/res/android"
ET.register_namespace("android", ANDROID)


def catalog(path, key):
    match = re.search(rf'^{key} = "([^"]+)"', open(path).read(), re.M)
    return match.group(1)


app = ET.parse(sys.argv[1]).getroot()
library = ET.parse(sys.argv[2]).getroot()
app.set("package", "org.peerns.app")
sdk = ET.Element("uses-sdk")
sdk.set(f"{{{ANDROID}}}minSdkVersion", catalog(sys.argv[3], "minSdk"))
sdk.set(f"{{{ANDROID}}}targetSdkVersion", catalog(sys.argv[3], "targetSdk"))
app.insert(0, sdk)
for i, permission in enumerate(library.findall("uses-permission")):
    app.insert(1 + i, permission)
sys.stdout.write(ET.tostring(app, encoding="unicode"))
