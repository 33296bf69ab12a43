"""The LwM2M protocol side of the server: aiocoap resources and the request sender."""
