// Single-edge-notched shear (SENS) specimen of Miehe, Hofacker & Welschinger, CMAME 199
// (2010) 2765: a 1 mm square with a horizontal notch from the left edge to the centre at
// mid-height. Coordinates in micrometres (the unit of ssbfrac meshes). The notch is a
// narrow V (opening 2 w at the left edge, sharp at the centre). Elements of size h_band in
// the lower right quarter where the crack curves down (x > 490, y < 510), h_far elsewhere.
// Physical groups are named after the ssbfrac convention (meshes/tags.py).
SetFactory("Built-in");
L = 1000; w = 0.5;
h_band = 3.75; h_far = 40.0;

Point(1) = {0, 0, 0, h_far};
Point(2) = {L, 0, 0, h_far};
Point(3) = {L, L, 0, h_far};
Point(4) = {0, L, 0, h_far};
Point(5) = {0, L / 2 + w, 0, h_band};
Point(6) = {L / 2, L / 2, 0, h_band};
Point(7) = {0, L / 2 - w, 0, h_band};
Line(1) = {1, 2};   // bottom
Line(2) = {2, 3};   // right
Line(3) = {3, 4};   // top
Line(4) = {4, 5};   // left, upper part
Line(5) = {5, 6};   // notch, upper face
Line(6) = {6, 7};   // notch, lower face
Line(7) = {7, 1};   // left, lower part
Curve Loop(1) = {1, 2, 3, 4, 5, 6, 7};
Plane Surface(1) = {1};

Field[1] = Box;
Field[1].VIn = h_band;
Field[1].VOut = h_far;
Field[1].XMin = L / 2 - 10; Field[1].XMax = L;
Field[1].YMin = 0; Field[1].YMax = L / 2 + 10;
Field[1].Thickness = 100;
Background Field = 1;
Mesh.MeshSizeExtendFromBoundary = 0;
Mesh.MeshSizeFromPoints = 0;
Mesh.Algorithm = 6;

Physical Surface("electrolyte") = {1};
Physical Curve("bottom") = {1};
Physical Curve("right") = {2};
Physical Curve("top") = {3};
Physical Curve("left") = {4, 7};
